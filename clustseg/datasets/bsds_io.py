"""Reading of BSDS500 ground-truth ``.mat`` files."""
import os.path as osp

import numpy as np


def load_bsds_segmentations(mat_path: str) -> np.ndarray:
    """All annotator segmentations of one BSDS500 ``groundTruth/<split>/<id>.mat`` file.

    The file holds a ``groundTruth`` cell array of shape ``1 x A``; entry ``k`` is a struct whose
    ``Segmentation`` field is an ``H x W`` integer region map (ids start at 1).

    Args:
        mat_path (str): path of the ``.mat`` file.

    Returns:
        np.ndarray: ``A x H x W`` int64 region labels, annotators in file order.

    Raises:
        FileNotFoundError: if ``mat_path`` does not exist.
        ValueError: if the file is not a BSDS groundTruth ``.mat`` file.
    """
    from scipy.io import loadmat  # imported lazily: scipy.io is slow to import

    if not isinstance(mat_path, (str, bytes)) and not hasattr(mat_path, '__fspath__'):
        raise ValueError(f'mat_path must be a path, got {type(mat_path).__name__}')
    mat_path = str(mat_path)
    if not osp.isfile(mat_path):
        raise FileNotFoundError(f'BSDS groundTruth file not found: {mat_path}')
    try:
        mat = loadmat(mat_path)
    except Exception as err:  # scipy raises several types for non-MATLAB files
        raise ValueError(f'{mat_path} is not a readable MATLAB .mat file '
                         f'(expected a BSDS groundTruth file): {err}') from err
    gt = mat.get('groundTruth')
    if gt is None:
        raise ValueError(f'{mat_path} is not a BSDS groundTruth .mat file: it has no '
                         f"'groundTruth' variable (variables: "
                         f"{sorted(k for k in mat if not k.startswith('__'))})")
    gt = np.asarray(gt)
    if (gt.dtype != object or gt.ndim != 2 or gt.shape[0] != 1 or gt.shape[1] == 0):
        raise ValueError(f"{mat_path} is not a BSDS groundTruth .mat file: 'groundTruth' is "
                         f'{gt.dtype} of shape {gt.shape}, expected a 1 x A cell array')
    segs = []
    for k in range(gt.shape[1]):
        entry = gt[0, k]
        names = entry.dtype.names or ()
        if 'Segmentation' not in names:
            raise ValueError(f'{mat_path} is not a BSDS groundTruth .mat file: annotator {k} '
                             f"has no 'Segmentation' field (fields: {names})")
        seg = np.asarray(entry['Segmentation'][0, 0])
        if seg.ndim != 2 or seg.dtype.kind not in 'iuf':
            raise ValueError(f'{mat_path}: annotator {k} Segmentation is {seg.dtype} of shape '
                             f'{seg.shape}, expected a 2-D integer map')
        if segs and seg.shape != segs[0].shape:
            raise ValueError(f'{mat_path}: annotator {k} Segmentation is {seg.shape} but '
                             f'annotator 0 is {segs[0].shape}')
        segs.append(seg.astype(np.int64))
    return np.stack(segs, axis=0)
