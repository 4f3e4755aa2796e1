"""Keep freed host memory mapped for CPU training, inference and benchmarks (glibc malloc).

With glibc's defaults, a tensor of more than 32 MiB (and, once freed memory at the top of the
heap passes the trim threshold, a smaller one too) gets fresh pages from the kernel on every
allocation and gives them back when freed, so each large temporary of a training step pays one
page fault per 4 KiB page when it is first written. A panoptic ClustSeg-R50 training step at
512 px on one CPU thread took 350k-620k minor faults after the first one.
:func:`keep_freed_host_memory` makes malloc serve every allocation from the heap and never
shrink it (as PyTorch's caching allocator does for GPU memory): from the third step on a step
took a handful of faults, and the step time fell by 18 % (ClustSeg T = 3) and 38 %
(Mask2Former). The price: the process keeps its peak heap until it exits (peak resident set
+1 % to +10 % in those runs). docs/benchmark.md, "Host memory on the CPU" and "Results".
"""
import ctypes
import ctypes.util
import sys

# mallopt parameters (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
#: heap growth per brk call, so that the heap grows in few large steps
TOP_PAD_BYTES = 256 * 2**20
#: free memory at the top of the heap kept instead of returned (mallopt takes an int)
TRIM_THRESHOLD_BYTES = 2**31 - 1

_applied = False


def keep_freed_host_memory() -> bool:
    """Set glibc's malloc to serve all allocations from the heap (no ``mmap`` chunks) and to
    keep freed memory instead of returning it to the kernel. Call it before the large
    allocations (model build, data). Idempotent; returns True when applied, False where the C
    library is not glibc (nothing is changed there). Forked data-loader workers inherit it."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                             (_M_TOP_PAD, TOP_PAD_BYTES)))
    _applied = ok
    return ok


__all__ = ['keep_freed_host_memory']
