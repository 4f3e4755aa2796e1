"""Convert the labelled NYU Depth v2 file to the superpixel folder layout (NYUv2 benchmark).

Input: the official labelled file ``nyu_depth_v2_labeled.mat`` (1449 images, MATLAB v7.3,
i.e. HDF5), read with ``h5py`` (``requirements/runtime.txt``).
Output: ``<out>/images/<id>.png`` (8-bit RGB, lossless) and ``<out>/labels/<id>.png``
(16-bit single-channel region ids), the layout read by ``SuperpixelFolderDataset`` with
``img_suffix='.png'``. ``<id>`` is the 1-based image index in the ``.mat`` file, zero-padded
to 8 digits (``00000002``), the naming of the superpixel benchmark of Stutz et al.

Usage (the 400 test images of the NYUv2 superpixel benchmark; the split file is not shipped
here, see below)::

    python tools/dataset_converters/nyuv2_superpixel.py nyu_depth_v2_labeled.mat \\
        data/nyuv2_superpixel/test --split-file nyuv2_test_subset.txt

and, in a config::

    dict(type='SuperpixelFolderDataset', data_root='data/nyuv2_superpixel/test',
         img_suffix='.png', test_mode=True, pipeline=[...])

What this relies on (and where it comes from)
-------------------------------------------
* File layout. MATLAB v7.3 files are HDF5, and HDF5 stores MATLAB's column-major arrays with
  the axes reversed. MATLAB's ``images`` (H x W x 3 x N, uint8), ``labels`` (H x W x N,
  class per pixel, 0 = unlabelled) and ``instances`` (H x W x N, instance number within
  the class) therefore read in h5py as ``images``: N x 3 x W x H = (1449, 3, 640, 480),
  ``labels`` / ``instances``: N x W x H; one image is ``images[i].transpose(2, 1, 0)``
  (H x W x 3, RGB) and its maps ``labels[i].T``. Source: public NYUv2 loading code that
  reads the file with h5py this way (e.g. the ``(1449, 3, 640, 480)`` shape and the
  ``transpose([2, 1, 0])`` / ``.T`` of images and label maps). The converter checks the
  layout (4-D ``images`` with 3 channels, ``labels`` and ``instances`` of equal 3-D shape
  matching the images) and names the file and key when it does not hold.
* Benchmark protocol: the scripts of the superpixel benchmark of Stutz, Hermans and Leibe,
  "Superpixels: An Evaluation of the State-of-the-Art" (CVIU 2018), repository
  ``davidstutz/superpixel-benchmark``: ``docs/DATASETS.md`` (section NYUV2) and
  ``lib_tools/nyuv2_convert_script.m``, ``nyuv2_generate_ground_truth.m``,
  ``nyuv2_mediannan.m``, ``nyuv2_find_border.m``, ``nyuv2_relabel.m``,
  ``nyuv2_crop_ground_truth.m``. SSN (Jampani et al. 2018) and SpixelFCN (Yang et al.
  2020) evaluate on that benchmark's NYUv2 test set (400 images, 608 x 448).

  1. Test subset: ``data/NYUV2/nyuv2_test_subset.txt`` of that repository lists **400**
     indices (8-digit, zero-padded, 1-based into the 1449 images of the ``.mat``: the script
     indexes ``images(:, :, :, ii)`` with them). Its ``docs/DATASETS.md`` says 399 were
     chosen at random; the file has 400 distinct lines (checked). All 400 lie in the
     repository's ``nyuv2_test.txt`` (580 indices, disjoint from its 869-index
     ``nyuv2_train.txt``), which is *not* the official ``splits.mat`` split (654 test /
     795 train), so the subset is not established to be a subset of ``testNdxs``. The
     list is not shipped here: pass it as ``--split-file`` (one 1-based index per line,
     leading zeros allowed, ``#`` comments and blank lines ignored), or pass
     ``--indices``; without either, every image in the file is converted.
  2. Ground-truth segments (``nyuv2_generate_ground_truth.m``, after Ren and Bo 2012): the
     segment code of a pixel is ``instances * 1000 + labels`` (the script asserts
     ``labels <= 1000``; so does this converter), i.e. one segment per (class, instance)
     pair, not split into connected components. Unlabelled pixels (code 0) inside the
     "foreground" are filled: foreground = ``labels > 0`` closed with a disk of radius 5
     (dilate, then erode), plus every 8-connected background component smaller than 500
     pixels; then, up to 100 rounds, each still-unlabelled foreground pixel with a
     labelled pixel in its 5 x 5 window takes the lower median of the labelled codes in
     that window (all pixels of one round updated at once). Codes still 0 stay unlabelled.
  3. Border: a pixel is "border" when its grey value (MATLAB ``rgb2gray``: 0.2989 R +
     0.5870 G + 0.1140 B, rounded) is >= 253 in *every* image of the file (the white frame
     of the NYU images); border pixels are set to unlabelled. Then images and ground truth
     are cropped by 16 pixels on each side: 640 x 480 -> 608 x 448.

Choices made here (not established as the benchmark's, so they are options or stated):

* ``--crop`` (default 16): pixels removed on each side, after filling and border masking.
* ``--no-fill`` / ``--no-border-mask``: skip step 2's filling / step 3's border mask.
* The closing uses the exact disk of radius 5 (``skimage.morphology.disk(5)``, MATLAB's
  ``strel('disk', 5, 0)``); MATLAB's default ``strel('disk', 5)`` is an approximation by
  line segments, so the foreground mask, hence the filled area, can differ from the
  benchmark's on pixels near its edge. Erosion treats pixels outside the image as
  foreground and dilation as background, as MATLAB's ``imerode`` / ``imdilate`` do.
* ``--connectivity 4|8`` splits every segment into its connected components (default
  ``0``: no split, as the benchmark).
* Unlabelled pixels are written as region id 0, segments as 1..n (numbered in row-major
  order of first appearance in the cropped map; the numbering carries no meaning). In the
  benchmark, unlabelled pixels were relabelled into one ordinary segment, which is what
  ``SuperpixelMetric``'s default ``ignore_index=-1`` does with id 0; to leave them out of
  the measures instead, evaluate with ``ignore_index=0`` (label PNGs cannot hold the
  repository's padding value -1).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
from scipy import ndimage

MAX_LABEL = 1000        # segment code = instance * MAX_LABEL + label (benchmark's maxlabel)
FILL_RADIUS = 5         # disk radius of the foreground closing
FILL_MIN_HOLE = 500     # background components smaller than this join the foreground
FILL_WINDOW = 5         # median window (odd)
FILL_ROUNDS = 100       # maximum filling rounds
BORDER_GREY = 253       # grey value at or above which a pixel is white in an image
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # MATLAB rgb2gray's documented R, G, B weights
KEYS = ('images', 'labels', 'instances')


class InputError(Exception):
    """A bad input or argument of the conversion; the message names the file (or argument).
    The subclasses keep the built-in type a caller may catch; ``main`` prints the message of
    these alone, so that any other exception keeps its traceback."""


class InputKeyError(InputError, KeyError):
    def __str__(self):  # the message, without KeyError's quotes
        return str(self.args[0])


class InputValueError(InputError, ValueError):
    pass


class InputOSError(InputError, OSError):
    pass


class InputFileNotFoundError(InputError, FileNotFoundError):
    pass


class InputFileExistsError(InputError, FileExistsError):
    pass


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is in requirements/runtime.txt
        raise ImportError('nyuv2_superpixel.py reads the MATLAB v7.3 (HDF5) file with h5py; '
                          'install it (bash tools/install.sh, or pip install h5py)') from e
    return h5py


class NYUv2Labeled:
    """The ``images`` / ``labels`` / ``instances`` datasets of ``nyu_depth_v2_labeled.mat``.

    Checks the layout on opening and raises :class:`InputError` (a ``KeyError`` /
    ``ValueError``) naming the file and the dataset key. Use as a context manager (closes
    the file).
    """

    def __init__(self, path: str) -> None:
        if not osp.isfile(path):
            raise InputFileNotFoundError(f'NYUv2 labelled file not found: {path}')
        h5py = _h5py()
        self.path = path
        try:
            self.file = h5py.File(path, 'r')
        except OSError as e:
            raise InputOSError(f'{path}: not an HDF5 file (nyu_depth_v2_labeled.mat is MATLAB '
                               f'v7.3 = HDF5): {e}') from e
        try:
            self._check(h5py)
        except Exception:
            self.file.close()
            raise

    def _check(self, h5py) -> None:
        for key in KEYS:
            if key not in self.file:
                raise InputKeyError(f'{self.path}: no dataset {key!r} (found '
                                    f'{sorted(self.file.keys())}); expected the labelled NYUv2 '
                                    'file nyu_depth_v2_labeled.mat')
            if not isinstance(self.file[key], h5py.Dataset):
                raise InputValueError(f'{self.path}: {key!r} is not an array dataset')
        images, labels, instances = (self.file[k] for k in KEYS)
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputValueError(f'{self.path}: dataset \'images\' has shape {images.shape}; '
                                  'expected N x 3 x W x H (MATLAB H x W x 3 x N as stored in '
                                  'HDF5)')
        if images.dtype != np.uint8:
            raise InputValueError(f"{self.path}: dataset 'images' is {images.dtype}, "
                                  'expected uint8')
        n, _, w, h = images.shape
        for key, ds in (('labels', labels), ('instances', instances)):
            if ds.shape != (n, w, h):
                raise InputValueError(f'{self.path}: dataset {key!r} has shape {ds.shape}; '
                                      f'expected {(n, w, h)} (N x W x H, matching images '
                                      f'{images.shape})')
            if ds.dtype.kind not in 'ui':
                raise InputValueError(f'{self.path}: dataset {key!r} is {ds.dtype}, expected '
                                      'integers')
        self.num_images, self.height, self.width = n, h, w

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` (0-based) as ``H x W x 3`` uint8 RGB."""
        return np.ascontiguousarray(self.file['images'][index].transpose(2, 1, 0))

    def maps(self, index: int):
        """``(labels, instances)`` of image ``index`` (0-based), each ``H x W`` int64."""
        labels = np.asarray(self.file['labels'][index]).T.astype(np.int64)
        instances = np.asarray(self.file['instances'][index]).T.astype(np.int64)
        for key, arr in (('labels', labels), ('instances', instances)):
            if arr.size and arr.min() < 0:
                raise InputValueError(f'{self.path}: dataset {key!r}, image {index + 1}: '
                                      f'negative value {arr.min()}')
        if labels.max(initial=0) > MAX_LABEL:
            raise InputValueError(f"{self.path}: dataset 'labels', image {index + 1}: class "
                                  f'{labels.max()} > {MAX_LABEL}; the segment code '
                                  f'instance * {MAX_LABEL} + label would be ambiguous')
        return labels, instances

    def border_mask(self, chunk: int = 16) -> np.ndarray:
        """``H x W`` bool: pixels whose grey value is >= 253 in every image of the file."""
        ds = self.file['images']
        mask = np.ones((self.width, self.height), bool)  # W x H, as stored
        w = np.asarray(GREY_WEIGHTS, np.float64)[:, None, None]
        for start in range(0, self.num_images, chunk):
            block = ds[start:start + chunk].astype(np.float64)  # n x 3 x W x H
            grey = np.floor((block * w).sum(axis=1) + 0.5)  # MATLAB rounds half away from 0
            mask &= (grey >= BORDER_GREY).all(axis=0)
        return np.ascontiguousarray(mask.T)


def nan_lower_median(seg: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                     window: int = FILL_WINDOW) -> np.ndarray:
    """Lower median of the non-NaN values of ``seg`` in the ``window`` x ``window`` box
    around each pixel ``(rows[k], cols[k])``; NaN where the box holds none. Outside the
    image counts as NaN."""
    r = window // 2
    padded = np.pad(seg, r, constant_values=np.nan)
    boxes = np.lib.stride_tricks.sliding_window_view(padded, (window, window))
    vals = np.sort(boxes[rows, cols].reshape(len(rows), -1), axis=1)  # NaN sort last
    count = (~np.isnan(vals)).sum(axis=1)
    out = np.full(len(rows), np.nan)
    ok = count > 0
    out[ok] = vals[ok, (count[ok] + 1) // 2 - 1]
    return out


def fill_foreground(labels: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Benchmark step 2: fill unlabelled (code 0) pixels of the closed foreground by repeated
    5 x 5 lower medians of the labelled codes; returns the filled ``codes`` (int64)."""
    from skimage.morphology import disk
    fg = labels > 0
    fg = ndimage.binary_dilation(fg, structure=disk(FILL_RADIUS), border_value=0)
    fg = ndimage.binary_erosion(fg, structure=disk(FILL_RADIUS), border_value=1)
    bg_cc, num = ndimage.label(~fg, structure=np.ones((3, 3), bool))
    if num:
        sizes = np.bincount(bg_cc.ravel(), minlength=num + 1)
        small = np.flatnonzero(sizes < FILL_MIN_HOLE)
        fg |= np.isin(bg_cc, small[small > 0])
    seg = codes.astype(np.float64)
    seg[codes == 0] = np.nan
    for _ in range(FILL_ROUNDS):
        rows, cols = np.nonzero(np.isnan(seg) & fg)
        if len(rows) == 0:
            break
        med = nan_lower_median(seg, rows, cols)
        ok = ~np.isnan(med)
        if not ok.any():
            break
        seg[rows[ok], cols[ok]] = med[ok]
    seg[np.isnan(seg)] = 0
    return seg.astype(np.int64)


def relabel(codes: np.ndarray, connectivity: int = 0) -> np.ndarray:
    """Region ids 1..n in row-major order of first appearance; code 0 stays 0.

    ``connectivity`` 4 or 8 first splits every code into its connected components.
    """
    if connectivity:
        from skimage.measure import label as cc_label
        codes = cc_label(codes, background=0, connectivity=1 if connectivity == 4 else 2)
    flat = codes.ravel()
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    order = np.argsort(first, kind='stable')
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    ids = rank[inverse]
    zero = np.flatnonzero(uniq == 0)
    if len(zero):  # 0 keeps id 0; the others are renumbered 1..n in appearance order
        z = rank[zero[0]]
        ids = np.where(ids == z, 0, np.where(ids < z, ids + 1, ids))
    else:
        ids = ids + 1
    return ids.reshape(codes.shape)


def ground_truth(labels: np.ndarray, instances: np.ndarray, border: Optional[np.ndarray],
                 crop: int, fill: bool = True, connectivity: int = 0) -> np.ndarray:
    """Region-id map (int64, 0 = unlabelled) of one image, cropped by ``crop`` per side."""
    codes = instances * MAX_LABEL + labels
    if fill:
        codes = fill_foreground(labels, codes)
    if border is not None:
        codes = np.where(border, 0, codes)
    return relabel(_crop(codes, crop), connectivity)


def _crop(arr: np.ndarray, crop: int) -> np.ndarray:
    return arr[crop:arr.shape[0] - crop, crop:arr.shape[1] - crop]


def read_split_file(path: str, num_images: int) -> List[int]:
    """1-based indices, one a line (leading zeros allowed; blank lines and ``#`` comments
    ignored); errors name the file and line."""
    if not osp.isfile(path):
        raise InputFileNotFoundError(f'split file not found: {path}')
    out = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            text = line.split('#')[0].strip()
            if not text:
                continue
            if not text.isdigit():
                raise InputValueError(f'{path}:{lineno}: {text!r} is not a 1-based image index')
            out.append(int(text))
    if not out:
        raise InputValueError(f'{path}: lists no image index')
    return check_indices(out, num_images, path)


def check_indices(indices: Sequence[int], num_images: int, source: str) -> List[int]:
    seen = set()
    for i in indices:
        if not 1 <= i <= num_images:
            raise InputValueError(f'{source}: index {i} out of range 1..{num_images} (indices are '
                                  '1-based into the images of the .mat file)')
        if i in seen:
            raise InputValueError(f'{source}: index {i} listed twice')
        seen.add(i)
    return list(indices)


def image_id(index: int) -> str:
    """File stem of 1-based image ``index``: 8 digits, zero-padded (benchmark naming)."""
    return f'{index:08d}'


def convert(mat_path: str, out_dir: str, indices: Optional[Sequence[int]] = None,
            split_file: Optional[str] = None, crop: int = 16, fill: bool = True,
            border_mask: bool = True, connectivity: int = 0,
            overwrite: bool = False) -> List[str]:
    """Write ``out_dir/{images,labels}/<id>.png`` for the chosen images; returns the ids."""
    if indices is not None and split_file is not None:
        raise InputValueError('give either indices or split_file, not both')
    if crop < 0:
        raise InputValueError(f'crop must be >= 0, got {crop}')
    if connectivity not in (0, 4, 8):
        raise InputValueError(f'connectivity must be 0 (no split), 4 or 8, got {connectivity}')
    out_img, out_lbl = osp.join(out_dir, 'images'), osp.join(out_dir, 'labels')
    if not overwrite:
        for d in (out_img, out_lbl):
            if osp.isdir(d) and os.listdir(d):
                raise InputFileExistsError(f'output folder {d} is not empty (the dataset lists '
                                           'every file in it); use --overwrite or a new out_dir')
    with NYUv2Labeled(mat_path) as nyu:
        if 2 * crop >= min(nyu.height, nyu.width):
            raise InputValueError(f'crop {crop} leaves nothing of {nyu.height} x {nyu.width} '
                                  'images')
        if split_file is not None:
            chosen = read_split_file(split_file, nyu.num_images)
        elif indices is not None:
            chosen = check_indices(list(indices), nyu.num_images, 'indices')
        else:
            chosen = list(range(1, nyu.num_images + 1))
        border = nyu.border_mask() if border_mask else None
        os.makedirs(out_img, exist_ok=True)
        os.makedirs(out_lbl, exist_ok=True)
        ids = []
        for index in chosen:
            img = _crop(nyu.image(index - 1), crop)
            labels, instances = nyu.maps(index - 1)
            seg = ground_truth(labels, instances, border, crop, fill, connectivity)
            if seg.max() > np.iinfo(np.uint16).max:
                raise InputValueError(f'{mat_path}: image {index} has {seg.max()} segments, more '
                                      'than a 16-bit PNG holds')
            stem = image_id(index)
            for path, arr in ((osp.join(out_img, stem + '.png'), img[..., ::-1]),
                              (osp.join(out_lbl, stem + '.png'), seg.astype(np.uint16))):
                if not cv2.imwrite(path, np.ascontiguousarray(arr)):
                    raise InputOSError(f'cannot write {path}')
            ids.append(stem)
    # --overwrite replaces the outputs: the dataset lists every file of the folders
    outputs = _converter_outputs()
    outputs.report_removed([path for folder in (out_img, out_lbl) for path in
                            outputs.remove_unwritten(folder, [i + '.png' for i in ids])])
    return ids


def _converter_outputs():
    # by path: ``import clustseg`` would pull in torch and the models
    import importlib.util
    path = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', 'clustseg', 'utils',
                                'converter_outputs.py'))
    spec = importlib.util.spec_from_file_location('clustseg_converter_outputs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('mat', help='nyu_depth_v2_labeled.mat (MATLAB v7.3 / HDF5)')
    parser.add_argument('out_dir', help='output root (gets images/ and labels/)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--split-file', default=None,
                       help='text file of 1-based image indices, one a line (e.g. the '
                       "benchmark's nyuv2_test_subset.txt); default: every image")
    which.add_argument('--indices', type=int, nargs='+', default=None,
                       help='1-based image indices to convert')
    parser.add_argument('--crop', type=int, default=16,
                        help='pixels removed on each side (default 16: 640 x 480 -> 608 x 448)')
    parser.add_argument('--no-fill', action='store_true',
                        help='keep unlabelled pixels as they are (no median filling)')
    parser.add_argument('--no-border-mask', action='store_true',
                        help='do not mark the white frame (computed over all images) unlabelled')
    parser.add_argument('--connectivity', type=int, choices=[0, 4, 8], default=0,
                        help='split segments into 4- or 8-connected components (0: no split)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the contents of non-empty output folders (files this '
                        'run does not write are removed)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        ids = convert(args.mat, args.out_dir, indices=args.indices, split_file=args.split_file,
                      crop=args.crop, fill=not args.no_fill,
                      border_mask=not args.no_border_mask, connectivity=args.connectivity,
                      overwrite=args.overwrite)
    except InputError as err:  # bad inputs: the messages name the file
        raise SystemExit(f'error: {err}') from None
    print(f'{len(ids)} images -> {args.out_dir}/images, {args.out_dir}/labels')


if __name__ == '__main__':
    main()
