"""Output folders of the dataset converters (standard library only, so that converters that
avoid importing torch can load this file by path).

The folder datasets list every file of their image / label folders, so a file left there by
an earlier conversion (other ids, another annotator layout) would be read as part of the new
one. A converter writes its folders completely and then calls :func:`remove_unwritten`.
"""
import os
import os.path as osp
from typing import Iterable, List


def remove_unwritten(folder: str, written: Iterable[str], suffixes=('.png', '.jpg')) -> List[str]:
    """Delete the files of ``folder`` ending in ``suffixes`` whose names are not in
    ``written`` (the names this conversion wrote there); returns their paths, sorted."""
    keep = {osp.basename(name) for name in written}
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if name.endswith(tuple(suffixes)) and name not in keep and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def report_removed(removed: List[str], shown: int = 3) -> None:
    """One line naming what :func:`remove_unwritten` removed (nothing when it removed
    nothing)."""
    if removed:
        more = f' (+{len(removed) - shown} more)' if len(removed) > shown else ''
        print(f'removed {len(removed)} file(s) of an earlier conversion that this one does '
              f'not write: {", ".join(removed[:shown])}{more}', flush=True)
