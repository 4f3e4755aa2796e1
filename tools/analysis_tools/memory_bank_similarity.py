"""How distinct the dreamy start's class centers are: the cosine similarity of the memory-bank
class means (Eq. 7) of a trained checkpoint.

    python tools/analysis_tools/memory_bank_similarity.py CONFIG CHECKPOINT [--out sim.json]

For every :class:`MemoryBankInitializer` of the model (the semantic bank, or a panoptic model's
stuff bank) it reads ``class_means()`` (the mean of each class's queue of stored pixel
embeddings, the fallback vector where a queue is empty; what the FFN turns into the class
centers), and prints per class its number of stored embeddings, its nearest other class and
their cosine similarity, then the K x K cosine matrix. Classes whose means are nearly equal
start as nearly the same cluster center; docs/model_zoo.md ("Held-out benchmarks") reads this
for CamVid's thin classes.
"""
import argparse
import json
import os
import os.path as osp

import torch
import torch.nn.functional as F


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='config of the checkpoint (semantic or panoptic)')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out', help='also write the results as JSON to this file')
    return p.parse_args(argv)


def class_names(model):
    """The dataset's class names (checkpoint meta or the config's dataset), or None."""
    from clustseg.apis.inference import detector_dataset_meta, segmentor_dataset_meta
    try:
        meta = segmentor_dataset_meta(model) if hasattr(model, 'decode_head') else \
            detector_dataset_meta(model)
    except (AttributeError, TypeError):
        return None
    return list(meta.get('classes') or ()) or None


@torch.no_grad()
def bank_similarities(model):
    """[dict(module, classes, count, cosine K x K)] for every memory bank of ``model``."""
    from clustseg.models.initializers import MemoryBankInitializer, PanopticInitializer
    names = class_names(model)
    offsets = {id(m.stuff): m.stuff_class_offset for m in model.modules()
               if isinstance(m, PanopticInitializer)}
    out = []
    for qual, bank in model.named_modules():
        if not isinstance(bank, MemoryBankInitializer):
            continue
        k, offset = bank.num_classes, offsets.get(id(bank), 0)
        classes = names[offset:offset + k] if names and len(names) >= offset + k else \
            [str(offset + i) for i in range(k)]
        means = F.normalize(bank.class_means().float(), dim=1)  # K x C
        out.append(dict(module=qual, classes=classes, count=bank.count.tolist(),
                        cosine=(means @ means.T).tolist()))
    if not out:
        raise SystemExit(f'{type(model).__name__} has no MemoryBankInitializer')
    return out


def format_bank(bank):
    cos = torch.tensor(bank['cosine'])
    k = cos.shape[0]
    width = max(len(c) for c in bank['classes'])
    lines = [f"{bank['module']} ({k} classes)", '',
             '| class | stored embeddings | nearest class | cosine |', '|---|---:|---|---:|']
    off = cos - 2 * torch.eye(k)
    for i, name in enumerate(bank['classes']):
        j = int(off[i].argmax())
        lines.append(f"| {name} | {bank['count'][i]} | {bank['classes'][j]} | "
                     f'{float(cos[i, j]):.2f} |')
    lines += ['', ' ' * (width + 1) + ' '.join(f'{c[:5]:>5}' for c in bank['classes'])]
    for i, name in enumerate(bank['classes']):
        lines.append(f'{name:>{width}} ' + ' '.join(f'{float(v):5.2f}' for v in cos[i]))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from clustseg.apis import init_model
    model = init_model(args.config, args.checkpoint)
    banks = bank_similarities(model)
    print('\n\n'.join(format_bank(b) for b in banks))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(banks, f, indent=1)
    return banks


if __name__ == '__main__':
    main()
