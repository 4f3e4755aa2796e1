"""Strip a training checkpoint down to what inference needs (weights + a little meta).

python tools/model_converters/publish_model.py IN.pth OUT.pth

Drops the optimizer, param-scheduler and message-hub state, keeps ``state_dict`` and
``meta`` (config text, iteration, seed, versions), writes atomically and prints size and sha256.
"""
import argparse
import hashlib
import io
import os.path as osp
import sys

import torch

import clustseg  # noqa: F401  (allow-lists mmengine checkpoint contents)
from clustseg.utils.checkpoint import (InvalidCheckpointError, atomic_write_bytes,
                                       load_from_checked_file)

KEEP_META = ('cfg', 'iter', 'epoch', 'seed', 'mmengine_version', 'time', 'experiment_name',
             'dataset_meta')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', help='checkpoint written by the Runner')
    p.add_argument('dst', help='output file')
    args = p.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'error: checkpoint not found: {args.src}')
    try:  # the project's allow-listed load: a bad file is an error naming it
        ckpt = load_from_checked_file(args.src, map_location='cpu')
    except InvalidCheckpointError as err:
        sys.exit(f'error: {err}')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        sys.exit(f'error: {args.src} has no "state_dict" (not an mmengine checkpoint?)')
    meta = {k: v for k, v in ckpt.get('meta', {}).items() if k in KEEP_META}
    out = dict(state_dict={k: v.contiguous() for k, v in ckpt['state_dict'].items()}, meta=meta)
    buf = io.BytesIO()
    torch.save(out, buf)
    data = buf.getvalue()
    atomic_write_bytes(data, args.dst)
    print(f'{args.dst}: {len(data) / 2**20:.2f} MiB, sha256 {hashlib.sha256(data).hexdigest()}')


if __name__ == '__main__':
    main()
