"""Connectivity post-processing of superpixel label maps."""
import heapq
from collections import defaultdict

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def _components(labels: np.ndarray):
    """4-connected components of equal-label pixels.

    Returns ``(comp, n)``: ``comp`` is ``H x W`` int64 in ``0..n-1``, numbered in raster order of
    each component's first pixel.
    """
    h, w = labels.shape
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    same_r = labels[:, :-1] == labels[:, 1:]
    same_d = labels[:-1, :] == labels[1:, :]
    src = np.concatenate([idx[:, :-1][same_r], idx[:-1, :][same_d]])
    dst = np.concatenate([idx[:, 1:][same_r], idx[1:, :][same_d]])
    graph = sparse.coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)),
                              shape=(h * w, h * w)).tocsr()
    n, comp = connected_components(graph, directed=False)
    # renumber by first pixel in raster order (scipy's order is an implementation detail)
    _, first = np.unique(comp, return_index=True)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(n, dtype=np.int64)
    return rank[comp].reshape(h, w), n


def _border_pairs(comp: np.ndarray, n: int, keep: np.ndarray):
    """Shared border lengths between different components.

    Counts 4-neighbour pixel pairs ``(p, q)`` with ``comp[p] != comp[q]``; only pairs with at
    least one endpoint flagged in ``keep`` (length ``n`` bool) are returned.

    Returns ``(a, b, length)`` int64 arrays, ``a < b``.
    """
    a = np.concatenate([comp[:, :-1].ravel(), comp[:-1, :].ravel()])
    b = np.concatenate([comp[:, 1:].ravel(), comp[1:, :].ravel()])
    diff = (a != b) & (keep[a] | keep[b])
    a, b = a[diff], b[diff]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys, counts = np.unique(lo * n + hi, return_counts=True)
    return keys // n, keys % n, counts.astype(np.int64)


def enforce_connectivity(labels, min_size: int) -> np.ndarray:
    """Make every superpixel 4-connected and at least ``min_size`` pixels large.

    Rule:

    1. Every 4-connected component of equal-label pixels becomes its own region (a label that
       occurs in two disconnected places is split in two). Components are indexed in raster
       order of their first pixel; a region keeps the index of the component it grew from.
    2. While some region has fewer than ``min_size`` pixels and there is more than one region,
       the smallest such region (ties: smaller index) is merged into the adjacent region with
       which it shares the longest border, measured as the number of 4-neighbour pixel pairs
       across the border (ties: the larger neighbour, then the smaller index). Sizes and borders
       are updated after every merge, so a region that grew by merging but is still too small
       is re-examined with its new size.
    3. Output labels are contiguous ``0..n-1``, numbered in raster order of each region's first
       pixel.

    Measured on a 481 x 321 map (one core of the shared development machine): ~12 ms for
    connected SLIC output (``n_segments=600``, ~400 labels); ~55 ms for raw SLIC output with
    600 labels split into ~14600 fragments and ``min_size=64`` (~14000 merges).

    Args:
        labels (array-like): ``H x W`` integer label map (any ids, negatives allowed).
        min_size (int): minimum region size in pixels; ``<= 1`` disables merging.

    Returns:
        np.ndarray: ``H x W`` int64 labels in ``0..n-1``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f'labels must be a 2-D H x W label map, got shape {labels.shape}')
    if labels.dtype.kind not in 'iub':
        raise ValueError(f'labels must have an integer dtype, got {labels.dtype}')
    if labels.size == 0:
        raise ValueError(f'labels must be non-empty, got shape {labels.shape}')
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)):
        raise ValueError(f'min_size must be an int, got {min_size!r}')
    if min_size < 0:
        raise ValueError(f'min_size must be >= 0, got {min_size}')

    comp, n = _components(labels)
    sizes = np.bincount(comp.ravel(), minlength=n).astype(np.int64)
    small = sizes < min_size
    if n == 1 or not small.any():
        return comp

    # Adjacency restricted to pairs touching a small region: a region of size >= min_size never
    # gets merged away (sizes only grow), so its own neighbour list is never consulted.
    a, b, length = _border_pairs(comp, n, small)
    adj = defaultdict(dict)
    for i, j, l in zip(a.tolist(), b.tolist(), length.tolist()):
        adj[i][j] = l
        adj[j][i] = l
    size = sizes.tolist()
    parent = list(range(n))  # parent[c] = region that c was merged into (c itself if alive)
    alive = n
    heap = [(size[c], c) for c in np.flatnonzero(small).tolist()]
    heapq.heapify(heap)
    while heap and alive > 1:
        s, c = heapq.heappop(heap)
        if parent[c] != c or s != size[c]:
            continue  # merged away, or a stale entry (its size changed)
        nbrs = adj.pop(c)
        # longest border, then larger neighbour, then smaller index
        t, best = -1, None
        for k, l in nbrs.items():
            key = (l, size[k], -k)
            if best is None or key > best:
                t, best = k, key
        adj_t = adj[t]
        for k, l in nbrs.items():
            if k != t:
                adj_k = adj[k]
                del adj_k[c]
                adj_k[t] = adj_k.get(t, 0) + l
                adj_t[k] = adj_t.get(k, 0) + l
        adj_t.pop(c, None)
        parent[c] = t
        size[t] += s
        alive -= 1
        if size[t] < min_size:
            heapq.heappush(heap, (size[t], t))

    # resolve merge chains
    root = np.array(parent, dtype=np.int64)
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    merged = root[comp]
    _, first, inv = np.unique(merged.ravel(), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(first.size, dtype=np.int64)
    return rank[inv].reshape(labels.shape)
