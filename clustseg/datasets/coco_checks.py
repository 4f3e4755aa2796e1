"""Load-time checks of COCO-style annotation files (instance and panoptic JSON).

Used by :class:`~clustseg.datasets.ClustSegCocoDataset` and
:class:`~clustseg.datasets.ClustSegCocoPanopticDataset` together with
:class:`~clustseg.datasets.SkipBadSamplesMixin`: a bad image entry raises a
:class:`~clustseg.datasets.BadInputError` naming the file, or with ``skip_bad=True`` is
recorded (warning + ``metainfo['skipped']``) and dropped.
"""
import os.path as osp
from typing import Iterable, List, Optional, Sequence

from .image_io import BadInputError, MissingInputError

#: Keys every entry of a COCO JSON needs (read by mmdet's datasets, pycocotools' COCOeval or
#: panopticapi's PQ); a missing one is an error naming the JSON and the entry.
TOP_LEVEL_KEYS = ('images', 'annotations', 'categories')
CATEGORY_KEYS = ('id', 'name')
PANOPTIC_CATEGORY_KEYS = ('id', 'name', 'isthing')
IMAGE_KEYS = ('id', 'file_name', 'height', 'width')
INSTANCE_ANN_KEYS = ('id', 'image_id', 'category_id', 'bbox', 'area', 'iscrowd', 'segmentation')
PANOPTIC_ANN_KEYS = ('image_id', 'file_name', 'segments_info')
PANOPTIC_SEGMENT_KEYS = ('id', 'category_id', 'bbox', 'area', 'iscrowd')


def _missing(entry, keys: Sequence[str]) -> List[str]:
    if not isinstance(entry, dict):
        return list(keys)
    return [k for k in keys if k not in entry]


def _keys_text(keys: Sequence[str]) -> str:
    return ', '.join(repr(k) for k in keys)


def coco_json_problem(js, panoptic: bool) -> Optional[str]:
    """The first structural problem of a parsed COCO instance / panoptic JSON, or None: a
    missing top-level list, or an entry (category, image, annotation, panoptic segment)
    without a key of :data:`CATEGORY_KEYS` ... :data:`PANOPTIC_SEGMENT_KEYS`."""
    if not isinstance(js, dict):
        return f'not a COCO annotation file (a JSON {type(js).__name__}, expected an object)'
    for key in TOP_LEVEL_KEYS:
        if not isinstance(js.get(key), list):
            return (f'no {key!r} list (its top-level keys: {_keys_text(sorted(js))}); a COCO '
                    f'annotation file needs {_keys_text(TOP_LEVEL_KEYS)}')
    cat_keys = PANOPTIC_CATEGORY_KEYS if panoptic else CATEGORY_KEYS
    for cat in js['categories']:
        miss = _missing(cat, cat_keys)
        if miss:
            return f'category {_get(cat, "id")!r} has no {_keys_text(miss)} key'
    for img in js['images']:
        problem = image_entry_problem(img)
        if problem:
            return problem
    for ann in js['annotations']:
        problem = annotation_problem(ann, panoptic)
        if problem:
            return problem
    return None


def _get(entry, key):
    return entry.get(key) if isinstance(entry, dict) else None


def image_entry_problem(img) -> Optional[str]:
    """Why image entry ``img`` of a COCO JSON is incomplete (missing keys), or None."""
    miss = _missing(img, IMAGE_KEYS)
    if miss:
        return (f'image entry {_get(img, "id")!r} ({_get(img, "file_name")!r}) has no '
                f'{_keys_text(miss)} key')
    return None


def annotation_problem(ann, panoptic: bool, segments: bool = True) -> Optional[str]:
    """Why annotation ``ann`` of a COCO JSON is incomplete, or None: an instance annotation
    (``panoptic=False``) or a panoptic one, whose ``segments_info`` entries are checked too
    unless ``segments=False`` (``ann`` is then one segment, as mmdet's panoptic API gives)."""
    if not panoptic:
        miss = _missing(ann, INSTANCE_ANN_KEYS)
        if miss:
            return (f'annotation {_get(ann, "id")!r} of image {_get(ann, "image_id")!r} has no '
                    f'{_keys_text(miss)} key')
        return None
    if not segments:
        miss = _missing(ann, PANOPTIC_SEGMENT_KEYS)
        if miss:
            return (f'segment {_get(ann, "id")!r} of image {_get(ann, "image_id")!r} has no '
                    f'{_keys_text(miss)} key (in its segments_info)')
        return None
    miss = _missing(ann, PANOPTIC_ANN_KEYS)
    if miss:
        return (f'panoptic annotation of image {_get(ann, "image_id")!r} '
                f'({_get(ann, "file_name")!r}) has no {_keys_text(miss)} key')
    if not isinstance(ann['segments_info'], list):
        return (f'panoptic annotation of image {ann["image_id"]!r}: segments_info is a '
                f'{type(ann["segments_info"]).__name__}, expected a list')
    for seg in ann['segments_info']:
        problem = annotation_problem(dict(seg, image_id=ann['image_id'])
                                     if isinstance(seg, dict) else seg, True, segments=False)
        if problem:
            return problem
    return None


def check_annotated_size(path: str, what: str, hw: Iterable[int], results: dict) -> None:
    """Raise :class:`BadInputError` naming ``path`` (``what``: 'image', 'panoptic PNG') if its
    size ``hw`` is not the ``height`` x ``width`` that the sample's annotation file (the
    COCO JSON, ``results['ann_file']``) gives for it. Samples without both keys pass."""
    if 'height' not in results or 'width' not in results:
        return
    h, w = (int(v) for v in hw)
    if (results['height'], results['width']) == (h, w):
        return
    where = f'image {results.get("img_path")} (id {results.get("img_id")})'
    if results.get('ann_file'):
        where += f' in {results["ann_file"]}'
    raise BadInputError(path, f'{what} is {h} x {w} (H x W) but the JSON gives '
                        f'{results["height"]} x {results["width"]} for {where}')


def is_local_path(path: str, backend_args: Optional[dict] = None) -> bool:
    """Whether ``path`` is read from the local file system (so it can be checked cheaply)."""
    return '://' not in str(path) and not backend_args


class CocoAnnotationChecksMixin:
    """Validates each image entry of a COCO JSON while mmdet's ``load_data_list`` parses it.

    List it after :class:`SkipBadSamplesMixin` and before the mmdet dataset class. Checked in
    :meth:`parse_data_info` (cheap: a file-existence test and dictionary look-ups per image):

    - the image file exists (:class:`MissingInputError` naming it);
    - every annotation of the image has a ``category_id`` among the file's ``categories``
      (:class:`BadInputError` naming the JSON and the image).

    - the image entry and its annotations have every key that mmdet, pycocotools' COCOeval
      or panopticapi read (:data:`IMAGE_KEYS`, :data:`INSTANCE_ANN_KEYS`,
      :data:`PANOPTIC_SEGMENT_KEYS`); mmdet would default a missing ``iscrowd`` silently
      and fail on a missing ``segmentation`` only when the sample is read.

    Subclasses add checks in :meth:`check_sample`. A bad entry is handed to ``bad_input``
    (raises, or records it with ``skip_bad``) and left out of the data list. A JSON that
    mmdet cannot even parse (no ``categories``, a panoptic annotation without
    ``segments_info``, a category without ``isthing`` ...) is a :class:`BadInputError`
    naming the JSON and the first such entry (:func:`coco_json_problem`), with or without
    ``skip_bad``. Every ``data_info`` carries ``ann_file``, so that the loaders can name it.
    """

    #: Whether the JSON is in the COCO panoptic format (a subclass sets it).
    panoptic_json = False

    def load_data_list(self) -> List[dict]:
        try:
            data_list = super().load_data_list()
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            problem = self.json_problem()
            if problem is None:
                raise
            raise BadInputError(self.ann_file, problem) from err
        return [info for info in data_list if info is not None]

    def json_problem(self) -> Optional[str]:
        """The first structural problem of ``ann_file`` (read again: only called when
        mmdet's parsing failed), or None."""
        from mmengine.fileio import load
        try:
            js = load(self.ann_file, file_format='json', backend_args=self.backend_args)
        except Exception as err:  # noqa: BLE001 - unreadable JSON: say so
            return f'cannot read the JSON: {type(err).__name__}: {err}'
        return coco_json_problem(js, self.panoptic_json)

    def parse_data_info(self, raw_data_info: dict):
        img_info = raw_data_info['raw_img_info']
        img_id = img_info['img_id']
        anns = [a for a in raw_data_info['raw_ann_info'] if a.get('image_id', img_id) == img_id]
        problem = image_entry_problem(img_info)
        if problem is not None:
            self.bad_input(BadInputError(self.ann_file, problem))
            return None
        img_path = osp.join(self.data_prefix['img'], img_info['file_name'])
        try:
            self.check_sample(img_info, anns, img_path)
        except BadInputError as err:
            self.bad_input(err)
            return None
        info = super().parse_data_info(raw_data_info)
        info['ann_file'] = self.ann_file
        return info

    def check_classes(self) -> None:
        """Raise ``ValueError`` (with or without ``skip_bad``: a configuration mismatch)
        unless ``metainfo['classes']`` are category names of the JSON in the JSON's order,
        each once: mmdet numbers the labels by the matched categories in the JSON's order and
        drops names it does not find, so a misspelled, missing or reordered class would train
        and evaluate silently under the wrong names. In a panoptic JSON the things
        (``isthing``) must be the first ``len(metainfo['thing_classes'])`` classes, as the
        heads read them. Checked once, at the first image entry (a JSON without images
        has nothing to mislabel)."""
        if getattr(self, '_classes_checked', False) or not hasattr(self, 'coco'):
            return  # checked, or no image was read (mmdet has dropped its COCO API)
        classes = list(self.metainfo['classes'])
        cats = self.coco.cats
        names = [cats[i]['name'] for i in self.cat_ids]
        where = f"{self.ann_file}: metainfo['classes']"
        unknown = [c for c in classes if c not in names]
        if unknown:
            known = sorted(c['name'] for c in cats.values())
            raise ValueError(f'{where} has {len(unknown)} name(s) that are no category of the '
                             f'JSON: {unknown[:8]}; its {len(known)} names begin '
                             f'{known[:8]}')
        for what, listed in (("metainfo['classes']", classes), ('the JSON', names)):
            twice = sorted({n for n in listed if listed.count(n) > 1})
            if twice:
                ids = {n: [i for i in self.cat_ids if cats[i]['name'] == n] for n in twice}
                raise ValueError(f'{where}: {what} names {twice[:8]} more than once (category '
                                 f'ids {ids}); mmdet would give them labels beyond the classes: '
                                 'give each class one name')
        if names != classes:
            first = next(i for i, (a, b) in enumerate(zip(names, classes)) if a != b)
            raise ValueError(
                f'{where} is not in the order of the JSON\'s categories (mmdet numbers labels '
                f'in the JSON\'s order): label {first} would be {names[first]!r}, not '
                f'{classes[first]!r}. List the classes in the order of the file\'s categories')
        if self.panoptic_json:
            num_things = len(self.metainfo.get('thing_classes', ()))
            bad = [n for i, n in enumerate(names)
                   if bool(cats[self.cat_ids[i]]['isthing']) != (i < num_things)]
            if bad:
                raise ValueError(
                    f'{where}: the first {num_things} classes (thing_classes) must be the '
                    f'JSON\'s isthing categories and the rest its stuff; {bad[:8]} are not')
        self._classes_checked = True

    def check_sample(self, img_info: dict, anns: List[dict], img_path: str) -> None:
        """Raise :class:`BadInputError` if the entry of ``img_path`` cannot be used."""
        self.check_classes()
        img_id = img_info['img_id']
        for ann in anns:
            problem = annotation_problem(ann, self.panoptic_json, segments=False)
            if problem is not None:
                raise BadInputError(self.ann_file, f'image {img_path} (id {img_id}): {problem}')
        if is_local_path(img_path, self.backend_args) and not osp.isfile(img_path):
            raise MissingInputError(
                img_path, f'image not found (image id {img_id} of {self.ann_file})')
        cats = self.coco.cats
        bad = [a for a in anns if a.get('category_id') not in cats]
        if bad:
            first = bad[0]
            more = f' (and {len(bad) - 1} more annotation(s) like it)' if len(bad) > 1 else ''
            raise BadInputError(
                self.ann_file,
                f'image {img_path} (id {img_id}): annotation {first.get("id")} has '
                f'category_id {first.get("category_id")!r}, which is not among the '
                f'{len(cats)} categories of this file{more}')
