"""Compare superpixel methods at equal *actual* superpixel counts.

Reads ``curve.csv`` files written by ``superpixel_curve.py`` (one or more methods each; a row
per requested K with the mean actual count), interpolates every measure of every method
linearly in the actual count, and prints a markdown table at the requested counts (``--counts``;
by default the counts of the first method). A count outside a method's measured range gives
``-`` (no extrapolation). Method names are ``LABEL:CSV[:METHOD]``: METHOD picks a method column
value (default: the first non-baseline method of the file, i.e. not SLIC / Grid).

Example (the superpixel ablations of ``superpixel_ablation.sh``)::

    python tools/analysis_tools/superpixel_compare.py \
        full:work_dirs/superpixel_ablation/a/curve/curve.csv \
        untrained:work_dirs/superpixel_ablation/g/curve/curve.csv \
        SLIC:docs/figures/bsds500_val_slic_grid_extended.csv:SLIC \
        --counts 300 600 900 --measures ASA BR CO
"""
import argparse
import csv
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

MEASURES = ('ASA', 'UE', 'BR', 'BP', 'CO')
BASELINES = ('SLIC', 'Grid')


def read_curve(path: str, method: Optional[str] = None) -> Tuple[str, Dict[str, np.ndarray]]:
    """One method's rows of a curve CSV -> (method, dict(count=..., ASA=..., ...)), sorted by
    count. Errors name the file."""
    try:
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise SystemExit(f'{path}: cannot read ({e.strerror})')
    if not rows:
        raise SystemExit(f'{path}: no rows')
    missing = {'method', 'num_superpixels', *MEASURES} - set(rows[0])
    if missing:
        raise SystemExit(f'{path}: not a curve CSV (missing columns {sorted(missing)})')
    methods = list(dict.fromkeys(r['method'] for r in rows))
    if method is None:
        own = [m for m in methods if m not in BASELINES]
        if not own:
            raise SystemExit(f'{path}: only baselines {methods}; name one as LABEL:CSV:METHOD')
        method = own[0]
    sel = [r for r in rows if r['method'] == method]
    if not sel:
        raise SystemExit(f'{path}: no rows of method {method!r} (has {methods})')
    try:
        data = {k: np.array([float(r[c]) for r in sel])
                for k, c in [('count', 'num_superpixels')] + [(m, m) for m in MEASURES]}
    except ValueError as e:
        raise SystemExit(f'{path}: bad number ({e})')
    order = np.argsort(data['count'], kind='stable')
    return method, {k: v[order] for k, v in data.items()}


def at_counts(curve: Dict[str, np.ndarray], counts: Sequence[float],
              measure: str) -> List[Optional[float]]:
    """Linear interpolation of ``measure`` at ``counts``; None outside the measured range."""
    x, y = curve['count'], curve[measure]
    return [float(np.interp(c, x, y)) if x[0] <= c <= x[-1] else None for c in counts]


def parse_spec(spec: str) -> Tuple[str, str, Optional[str]]:
    parts = spec.split(':')
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f'bad method spec {spec!r}: expected LABEL:CSV or LABEL:CSV:METHOD')
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def table(curves: Dict[str, Dict[str, np.ndarray]], counts: Sequence[float],
          measures: Sequence[str]) -> str:
    """Markdown table: one row per count, one column per (method, measure)."""
    labels = list(curves)
    head = ['count'] + [f'{m} {lab}' for m in measures for lab in labels]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    vals = {(lab, m): at_counts(curves[lab], counts, m) for lab in labels for m in measures}
    for i, c in enumerate(counts):
        cells = [f'{c:.0f}']
        for m in measures:
            for lab in labels:
                v = vals[(lab, m)][i]
                cells.append('-' if v is None else f'{v:.4f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Superpixel measures at equal actual counts, '
                                'linearly interpolated from superpixel_curve.py CSVs.')
    p.add_argument('methods', nargs='+', help='LABEL:CSV[:METHOD]')
    p.add_argument('--counts', type=float, nargs='+', default=None,
                   help='actual counts to compare at (default: the first method\'s)')
    p.add_argument('--measures', nargs='+', default=list(MEASURES), choices=MEASURES)
    args = p.parse_args(argv)
    curves = {}
    for spec in args.methods:
        label, path, method = parse_spec(spec)
        if label in curves:
            raise SystemExit(f'label {label!r} given twice')
        curves[label] = read_curve(path, method)[1]
    counts = args.counts or [float(c) for c in next(iter(curves.values()))['count']]
    print(table(curves, counts, args.measures))
    return 0


if __name__ == '__main__':
    sys.exit(main())
