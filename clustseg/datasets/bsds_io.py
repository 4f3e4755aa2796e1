"""Reading of BSDS500 ground-truth ``.mat`` files."""
import os.path as osp

import numpy as np

if __package__:
    from .image_io import BadInputError, MissingInputError
else:  # loaded as a lone file (tools/dataset_converters/bsds_to_folder.py avoids torch)
    import importlib.util as _util
    _spec = _util.spec_from_file_location(
        'clustseg_image_io', osp.join(osp.dirname(osp.abspath(__file__)), 'image_io.py'))
    _image_io = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_image_io)
    BadInputError, MissingInputError = _image_io.BadInputError, _image_io.MissingInputError


def load_bsds_segmentations(mat_path: str) -> np.ndarray:
    """All annotator segmentations of one BSDS500 ``groundTruth/<split>/<id>.mat`` file.

    The file holds a ``groundTruth`` cell array of shape ``1 x A``; entry ``k`` is a struct whose
    ``Segmentation`` field is an ``H x W`` integer region map (ids start at 1).

    Args:
        mat_path (str): path of the ``.mat`` file.

    Returns:
        np.ndarray: ``A x H x W`` int64 region labels, annotators in file order.

    Raises:
        MissingInputError: if ``mat_path`` does not exist (a ``FileNotFoundError``).
        BadInputError: if the file is not a BSDS groundTruth ``.mat`` file (a ``ValueError``);
            the message names the file.
    """
    from scipy.io import loadmat  # imported lazily: scipy.io is slow to import

    if not isinstance(mat_path, (str, bytes)) and not hasattr(mat_path, '__fspath__'):
        raise ValueError(f'mat_path must be a path, got {type(mat_path).__name__}')
    mat_path = str(mat_path)
    if not osp.isfile(mat_path):
        raise MissingInputError(mat_path, 'BSDS groundTruth file not found')
    if osp.getsize(mat_path) == 0:
        raise BadInputError(mat_path, 'empty file (0 bytes), expected a BSDS groundTruth .mat')
    try:
        mat = loadmat(mat_path)
    except Exception as err:  # scipy raises several types for non-MATLAB files
        raise BadInputError(mat_path, 'not a readable MATLAB .mat file (expected a BSDS '
                            f'groundTruth file): {type(err).__name__}: {err}') from err
    gt = mat.get('groundTruth')
    if gt is None:
        raise BadInputError(mat_path, "not a BSDS groundTruth .mat file: it has no "
                            "'groundTruth' variable (variables: "
                            f"{sorted(k for k in mat if not k.startswith('__'))})")
    gt = np.asarray(gt)
    if (gt.dtype != object or gt.ndim != 2 or gt.shape[0] != 1 or gt.shape[1] == 0):
        raise BadInputError(mat_path, "not a BSDS groundTruth .mat file: 'groundTruth' is "
                            f'{gt.dtype} of shape {gt.shape}, expected a 1 x A cell array')
    segs = []
    for k in range(gt.shape[1]):
        entry = np.asarray(gt[0, k])
        names = entry.dtype.names or ()
        if 'Segmentation' not in names:
            raise BadInputError(mat_path, f'not a BSDS groundTruth .mat file: annotator {k} '
                                f"has no 'Segmentation' field (fields: {names})")
        if entry.size != 1:
            raise BadInputError(mat_path, f'annotator {k} is a {entry.shape} struct array, '
                                'expected a single struct')
        seg = np.asarray(entry['Segmentation'].reshape(-1)[0])
        if seg.ndim != 2 or seg.dtype.kind not in 'iuf' or 0 in seg.shape:
            raise BadInputError(mat_path, f'annotator {k} Segmentation is {seg.dtype} of shape '
                                f'{seg.shape}, expected a non-empty 2-D integer map')
        if segs and seg.shape != segs[0].shape:
            raise BadInputError(mat_path, f'annotator {k} Segmentation is {seg.shape} but '
                                f'annotator 0 is {segs[0].shape}')
        segs.append(seg.astype(np.int64))
    return np.stack(segs, axis=0)
