"""keep_freed_host_memory: a freed large tensor's pages are reused, not faulted in again."""
import json
import subprocess
import sys

import pytest

_PROBE = r'''
import json, resource, sys
import torch
from clustseg.utils import keep_freed_host_memory
applied = keep_freed_host_memory() if sys.argv[1] == 'keep' else None
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
for _ in range(6):  # 64 MiB: above glibc's largest mmap threshold (32 MiB)
    before = faults()
    x = torch.empty(16 * 2**20).fill_(1.0)
    del x
    counts.append(faults() - before)
print(json.dumps(dict(applied=applied, faults=counts)))
'''


def _probe(mode):
    out = subprocess.run([sys.executable, '-c', _PROBE, mode], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc only')
def test_keep_freed_host_memory_reuses_the_pages_of_a_freed_tensor():
    pages = 64 * 2**20 // 4096
    default = _probe('default')
    # glibc's defaults: every 64 MiB allocation is a fresh mapping, faulted in page by page
    assert min(default['faults']) > pages // 2, default
    keep = _probe('keep')
    if not keep['applied']:
        pytest.skip('the C library is not glibc')
    # kept: the first allocations grow the heap (two of the first three on glibc 2.36), the
    # later ones reuse its pages
    assert sum(keep['faults']) < 2.5 * pages and max(keep['faults'][3:]) < pages // 50, keep
