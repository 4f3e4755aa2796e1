"""Peak memory of one superpixel training step (forward, backward, optimizer step).

Runs the config's model on the first ``--batch`` training samples of ``--data-root`` (its own
train pipeline: crops, flips, jitter) with K fixed to ``--num-superpixels`` and reports the
process's peak RSS (CPU) or ``torch.cuda.max_memory_allocated`` (``--device cuda``). Peak RSS
is monotone within a process, so measure each batch size in its own run; the per-image cost
is the difference of two batch sizes.

Example (the paper config's worst case, K = 2500 on 480 x 480 crops)::

    python tools/analysis_tools/superpixel_step_memory.py \\
        configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py \\
        --batch 2 --num-superpixels 2500 --data-root tests/data/bsds500
"""
import argparse
import json
import resource
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--num-superpixels', type=int, default=2500)
    p.add_argument('--data-root', default=None, help='overrides the train dataset data_root')
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default=None, help='write the result as JSON here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


def leaf_datasets(ds_cfg) -> list:
    """The dataset configs that read files: ``ds_cfg`` itself, or the entries of a
    concatenation (``SeededConcatDataset``) (the paper config trains on BSDS500 train + val)."""
    if 'datasets' in ds_cfg:
        return list(ds_cfg.datasets)
    return [ds_cfg]


def set_data_root(ds_cfg, data_root: str) -> None:
    """``--data-root`` for every dataset ``ds_cfg`` reads (:func:`leaf_datasets`)."""
    for leaf in leaf_datasets(ds_cfg):
        leaf.data_root = data_root


def main(argv=None):
    args = parse_args(argv)
    import clustseg  # noqa: F401  (registers the modules)
    from mmseg.registry import DATASETS, MODELS
    init_default_scope('mmseg')
    if args.batch < 1 or args.num_superpixels < 1:
        raise SystemExit('--batch and --num-superpixels must be >= 1')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.model.train_cfg.num_superpixels_range = (args.num_superpixels, args.num_superpixels)
    ds_cfg = cfg.train_dataloader.dataset
    if args.data_root:
        set_data_root(ds_cfg, args.data_root)
    ds = DATASETS.build(ds_cfg)
    if len(ds) < args.batch:
        roots = sorted({leaf.data_root for leaf in leaf_datasets(ds_cfg)})
        raise SystemExit(f'{", ".join(roots)}: {len(ds)} training samples < --batch {args.batch}')
    batch = pseudo_collate([ds[i] for i in range(args.batch)])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device)
    model.init_weights()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = args.device.startswith('cuda')
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    sum(losses.values()).backward()
    opt.step()
    if cuda:
        torch.cuda.synchronize()
    res = dict(config=args.config, batch=args.batch, num_superpixels=args.num_superpixels,
               input_shape=list(data['inputs'].shape), device=args.device,
               step_s=round(time.perf_counter() - t, 2),
               rss_before_step_mb=round(rss_before),
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2))
    if cuda:
        res['peak_cuda_mb'] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(res))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()
