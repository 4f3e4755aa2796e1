"""``clustseg-superpixels``: superpixels of files, folders and globs with the shipped model.

Usage::

    clustseg-superpixels INPUT... --out-dir DIR [--n-segments 600] [--overlay]

Each image ``<name>.<ext>`` gives ``DIR/<name>.png``, a 16-bit PNG of its labels
(``--start-label``, default 0, upwards), and with ``--overlay`` ``DIR/<name>_overlay.png``,
the image with the superpixel boundaries drawn. An image of a folder keeps its path relative to
that folder (``DIR/<sub/dir>/<name>.png``). Files are written atomically, so a run that is
stopped and started again skips the images whose outputs exist (``--overwrite`` recomputes
them). Each label PNG carries the settings it was made with (``--n-segments``,
``--start-label``) in a text chunk; an existing output with other settings, or without them,
stops the run with an error naming the file instead of counting as done (``--overwrite``
recomputes). The outputs are never inputs: a folder's images leave out ``DIR`` when it lies
inside that folder, and the label PNGs and overlays this command wrote (each carries its
settings) when ``DIR`` is the folder itself; an output that would replace an input image is an
error naming both. Unreadable, missing or too small images are skipped and listed at the end
(exit code 1 when there were any, after the others are done; 2 for bad arguments or outputs
made with other settings).
"""
import argparse
import glob
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import numpy as np

#: File extensions taken from a folder (case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
#: Boundary colour of the overlays (BGR: yellow).
OVERLAY_COLOR = (0, 255, 255)
#: PNG text key under which a label PNG (and an overlay) carries its settings (JSON).
SETTINGS_KEY = 'clustseg-superpixels'
#: The largest label of a 16-bit PNG.
PNG_MAX_LABEL = 65535


class LabelRangeError(ValueError):
    """An image's labels exceed :data:`PNG_MAX_LABEL` (it is skipped)."""


def _is_glob(pattern: str) -> bool:
    return glob.has_magic(pattern)


def _inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def written_here(path: str) -> bool:
    """``path`` is a label PNG or overlay of this command (it carries :data:`SETTINGS_KEY`;
    read from the PNG's header chunks, the pixels are not decoded)."""
    return path.lower().endswith('.png') and _png_text(path) is not None


def collect_inputs(inputs: List[str], recursive: bool = False, overlay: bool = False,
                   out_dir: Optional[str] = None
                   ) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
    """Expands files, folders and glob patterns. ``overlay``: each input also writes
    ``<stem>_overlay.png``, which must not be another input's output either.

    ``out_dir``: the outputs are no inputs. A folder (or pattern) leaves out the files of
    ``out_dir``'s subtree when ``out_dir`` lies inside that folder, and the files this command
    wrote (:func:`written_here`) anywhere in that subtree (``out_dir`` = the folder: its
    label PNGs and overlays sit next to the images).

    Returns:
        (jobs, missing): ``jobs`` = [(image path, output stem relative to the out dir)] in
        input order without repeats; ``missing`` = [(input, reason)] for inputs that match
        nothing.

    Raises:
        ValueError: two inputs would write the same output, naming both; an output would
            replace an input image (``out_dir`` given), naming both and ``--out-dir``.
    """
    jobs, missing, seen, outputs = [], [], set(), {}
    out_real = osp.realpath(out_dir) if out_dir is not None else None

    def is_output(p, folder=None):
        """``p`` (of a folder or pattern expansion) is in the out dir's subtree, and the out
        dir lies inside ``folder`` or ``p`` is a file this command wrote."""
        if out_real is None or not _inside(osp.realpath(p), out_real):
            return False
        if folder is not None:
            folder = osp.realpath(folder)
            if folder != out_real and _inside(out_real, folder):
                return True
        return written_here(p)

    def add(path, stem):
        path = osp.normpath(path)
        if path in seen:
            return
        seen.add(path)
        for out in [stem] + ([stem + '_overlay'] if overlay else []):
            if out in outputs:
                raise ValueError(f'{outputs[out]} and {path} would both be written to '
                                 f'{out}.png: give them separately, or their folders')
            outputs[out] = path
        jobs.append((path, stem))

    for item in inputs:
        if osp.isdir(item):
            pattern = osp.join(glob.escape(item), '**', '*') if recursive else \
                osp.join(glob.escape(item), '*')
            files = sorted(p for p in glob.glob(pattern, recursive=recursive)
                           if osp.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS)
                           and not is_output(p, item))
            if not files:
                missing.append((item, 'folder without images (' +
                                ', '.join(IMAGE_EXTENSIONS) + ')'))
            for p in files:
                add(p, osp.splitext(osp.relpath(p, item))[0])
        elif _is_glob(item):
            files = sorted(p for p in glob.glob(item, recursive=True)
                           if osp.isfile(p) and not is_output(p))
            if not files:
                missing.append((item, 'pattern matches no file'))
            for p in files:
                add(p, osp.splitext(osp.basename(p))[0])
        elif osp.isfile(item):
            add(item, osp.splitext(osp.basename(item))[0])
        else:
            missing.append((item, 'no such file or folder'))
    if out_real is not None:  # no output replaces an input image
        images = {osp.realpath(p): p for p, _ in jobs}
        for out, path in outputs.items():
            target = osp.join(out_dir, out + '.png')
            other = images.get(osp.realpath(target))
            if other is not None:
                what = 'that input image' if other == path else f'the input image {other}'
                raise ValueError(f'the output {target} of {path} would overwrite {what}: give '
                                 'another --out-dir')
    return jobs, missing


def _png_text(path: str) -> Optional[str]:
    """The :data:`SETTINGS_KEY` text chunk of PNG ``path`` (None: none, or not readable)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return getattr(im, 'text', {}).get(SETTINGS_KEY)
    except (OSError, ValueError):
        return None


def png_settings(path: str) -> Optional[dict]:
    """The settings recorded in label PNG ``path`` (None: none recorded, or not readable)."""
    import json
    text = _png_text(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _png_bytes(array: np.ndarray, settings: Optional[dict]) -> bytes:
    """``array`` (H x W uint16 or H x W x 3 RGB uint8) -> PNG bytes, with ``settings`` (JSON)
    in a text chunk under :data:`SETTINGS_KEY` (marks the file as this command's output)."""
    import io
    import json

    from PIL import Image, PngImagePlugin
    info = PngImagePlugin.PngInfo()
    if settings is not None:
        info.add_text(SETTINGS_KEY, json.dumps(settings, sort_keys=True))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format='PNG', pnginfo=info)
    return buf.getvalue()


def settings_conflict(path: str, settings: dict) -> Optional[str]:
    """Why the existing label PNG ``path`` cannot count as done with ``settings`` (None if
    it can): it records other settings (each named), or none."""
    recorded = png_settings(path)
    if recorded is None:
        return (f'{path} exists but records no settings (made by another tool or an older '
                'version)')
    differ = [f'{k} {recorded.get(k)!r} there, {v!r} now' for k, v in settings.items()
              if recorded.get(k) != v]
    if differ:
        return f'{path} was made with other settings: ' + '; '.join(differ)
    return None


def label_png(labels: np.ndarray, settings: Optional[dict] = None) -> bytes:
    """H x W labels -> the bytes of a 16-bit grayscale PNG (labels must be in 0..65535), with
    ``settings`` (JSON) in a text chunk under :data:`SETTINGS_KEY`."""
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi > PNG_MAX_LABEL:
        raise ValueError(f'labels in [{lo}, {hi}] do not fit a 16-bit PNG (0..{PNG_MAX_LABEL})')
    return _png_bytes(labels.astype(np.uint16, copy=False), settings)


def overlay_png(bgr: np.ndarray, labels: np.ndarray, color=OVERLAY_COLOR,
                settings: Optional[dict] = None) -> bytes:
    """The image (BGR uint8) with the label boundaries drawn in ``color`` -> PNG bytes, with
    ``settings`` (JSON) in a text chunk under :data:`SETTINGS_KEY` (marks it as an output).
    The boundaries are those :class:`~clustseg.visualization.SuperpixelVisualizer` draws
    (:func:`~clustseg.visualization.superpixel_boundaries`)."""
    from clustseg.visualization import superpixel_boundaries
    out = bgr.copy()
    out[superpixel_boundaries(labels)] = color
    return _png_bytes(out[..., ::-1], settings)


def _progress(total: int, enabled: bool):
    """tqdm progress bar on stderr (pinned in requirements/runtime.txt)."""
    from tqdm import tqdm
    return tqdm(total=total, disable=not enabled, unit='img', file=sys.stderr,
                dynamic_ncols=True)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='clustseg-superpixels',
        description='Superpixels of images with the shipped ClustSeg model: 16-bit label PNGs '
        '(and overlays) in --out-dir; existing outputs are kept (resumable).')
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image files, folders (their images) and glob patterns (quote '
                        "them, e.g. 'photos/**/*.jpg')")
    parser.add_argument('--out-dir', required=True, help='output folder (created)')
    parser.add_argument('--n-segments', type=int, default=600,
                        help='number of superpixels K (default 600)')
    parser.add_argument('--start-label', type=int, default=0,
                        help='first label in the PNGs (default 0)')
    parser.add_argument('--overlay', action='store_true',
                        help='also write <name>_overlay.png with the boundaries drawn')
    parser.add_argument('--recursive', action='store_true',
                        help='take the images of folders recursively')
    parser.add_argument('--device', default='cpu', help="torch device (default 'cpu')")
    parser.add_argument('--backend', default='torch', choices=('torch', 'onnx'),
                        help="'onnx': onnxruntime on the CPU (faster; docs/benchmark.md)")
    parser.add_argument('--overwrite', action='store_true',
                        help='recompute images whose outputs exist')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if not 1 <= args.n_segments <= PNG_MAX_LABEL + 1:
        parser.error(f'--n-segments must be in 1..{PNG_MAX_LABEL + 1} (labels of a 16-bit '
                     f'PNG), got {args.n_segments}')
    if args.start_label < 0:
        parser.error(f'--start-label must be >= 0, got {args.start_label}')
    if args.start_label + args.n_segments - 1 > PNG_MAX_LABEL:
        parser.error(f'--start-label must be <= {PNG_MAX_LABEL + 1 - args.n_segments} with '
                     f'--n-segments {args.n_segments} (a 16-bit PNG holds labels up to '
                     f'{PNG_MAX_LABEL}), got {args.start_label}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command; returns the exit code (0: all done, 1: some inputs skipped)."""
    args = parse_args(argv)
    from clustseg.apis.superpixel_api import superpixels
    from clustseg.datasets import BadInputError, read_image
    from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError
    from clustseg.utils import atomic_write_bytes

    try:
        jobs, failed = collect_inputs(args.inputs, args.recursive, args.overlay, args.out_dir)
    except ValueError as e:
        print(f'clustseg-superpixels: error: {e}', file=sys.stderr)
        return 2
    settings = dict(n_segments=args.n_segments, start_label=args.start_label)
    if not args.overwrite:  # outputs of other settings must not count as done
        existing_pngs = [p for p in (osp.join(args.out_dir, stem + '.png') for _, stem in jobs)
                         if osp.isfile(p)]
        conflicts = list(filter(None, (settings_conflict(p, settings) for p in existing_pngs)))
        if conflicts:
            more = f' (and {len(conflicts) - 1} more)' if len(conflicts) > 1 else ''
            print(f'clustseg-superpixels: error: {conflicts[0]}{more}; use --overwrite to '
                  'recompute them, or another --out-dir', file=sys.stderr)
            return 2
    done = existing = 0
    bar = _progress(len(jobs), not args.no_progress)
    for path, stem in jobs:
        out = osp.join(args.out_dir, stem + '.png')
        outs = [out] + ([osp.join(args.out_dir, stem + '_overlay.png')] if args.overlay else [])
        if not args.overwrite and all(osp.isfile(p) for p in outs):
            existing += 1
            bar.update(1)
            continue
        try:
            bgr = read_image(path)
            labels = superpixels(np.ascontiguousarray(bgr[..., ::-1]), args.n_segments,
                                 start_label=args.start_label, device=args.device,
                                 backend=args.backend)
            top = int(labels.max())
            if top > PNG_MAX_LABEL:  # the connectivity step left more regions than K
                raise LabelRangeError(
                    f'labels up to {top} ({top + 1 - args.start_label} superpixels from '
                    f'--start-label {args.start_label}) do not fit a 16-bit PNG (up to '
                    f'{PNG_MAX_LABEL}): give a smaller --start-label')
        except (BadInputError, TooManySuperpixelsError, LabelRangeError) as e:
            failed.append((path, str(e)))
            if args.overwrite:  # no output of the old settings stays behind
                for p in outs:
                    if osp.isfile(p):
                        os.remove(p)
            bar.update(1)
            continue
        atomic_write_bytes(label_png(labels, settings), out)
        if args.overlay:
            atomic_write_bytes(overlay_png(bgr, labels, settings=settings), outs[1])
        done += 1
        bar.update(1)
    bar.close()
    print(f'clustseg-superpixels: {done} written, {existing} already done (kept), '
          f'{len(failed)} skipped; outputs in {args.out_dir}', file=sys.stderr)
    for item, reason in failed:
        print(f'  skipped {item}: {reason}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
