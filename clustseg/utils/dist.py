"""Launcher set-up shared by tools/train.py and tools/test.py: gloo on CPU, nccl on GPU.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` for the pytorch / slurm / mpi
launchers and its Runner wraps the model with ``device_ids=[LOCAL_RANK]``; both fail on a
machine without CUDA. :func:`setup_distributed` picks the backend from the hardware (a config
needs no edit), and on CPU initialises the gloo process group itself and wraps the model in
``MMDistributedDataParallel`` without device ids. On GPU mmengine's own path runs, with nccl.
"""
import os
import subprocess
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.logging import print_log

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


#: per launcher, the variables of its environment holding this process's rank, the world size
#: and the local rank
LAUNCHER_ENV = dict(pytorch=('RANK', 'WORLD_SIZE', 'LOCAL_RANK'),
                    slurm=('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'),
                    mpi=('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
                         'OMPI_COMM_WORLD_LOCAL_RANK'))


def _env_from_launcher(launcher: str) -> None:
    """RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT (those not set already) from
    a Slurm or Open MPI launch's variables (:data:`LAUNCHER_ENV`); the master is Slurm's first
    node, or this host."""
    rank, world, local = LAUNCHER_ENV[launcher]
    os.environ.setdefault('RANK', os.environ[rank])
    os.environ.setdefault('WORLD_SIZE', os.environ[world])
    os.environ.setdefault('LOCAL_RANK', os.environ.get(local, '0'))
    if 'MASTER_ADDR' not in os.environ:
        host = ''
        if launcher == 'slurm':
            nodes = os.environ['SLURM_NODELIST']
            host = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1').strip()
        os.environ['MASTER_ADDR'] = host or '127.0.0.1'
    os.environ.setdefault('MASTER_PORT', '29500')


def launch_world_size(launcher: str) -> int:
    """The number of processes of this launch, before any process group exists: the group's
    size once initialised (the CPU path of :func:`setup_distributed`); else what the
    launcher's environment says (its world-size variable of :data:`LAUNCHER_ENV`), which
    mmengine's Runner turns into the group later (the GPU path); 1 without a launcher."""
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, got {launcher!r}')
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_world_size()
    if launcher == 'none':
        return 1
    return int(os.environ.get(LAUNCHER_ENV[launcher][1], 1))


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` (in place) for ``launcher`` on this machine's hardware.

    * ``env_cfg.dist_cfg.backend``: ``nccl`` with CUDA, ``gloo`` without. A config that names
      another backend (e.g. ``mpi``) keeps it.
    * Without CUDA and with a launcher: the gloo process group is created here (the Runner
      then skips its own ``init_dist``), and ``model_wrapper_cfg`` gets ``device_ids=None``.
    * Without CUDA and with a launcher (any world size, one process included): ``sync_bn`` is
      dropped with a warning. mmengine converts BN to SyncBN under any distributed launch, and
      torch's DDP refuses SyncBN layers off the GPU.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none':
        return
    cuda = torch.cuda.is_available()
    if cfg.get('sync_bn') and not cuda:
        print_log(f"sync_bn={cfg.sync_bn!r} dropped: torch's SyncBN needs a GPU, so the BN "
                  'layers keep per-process statistics on this CPU run', logger='current',
                  level=30)
        cfg.sync_bn = None
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend')
    if backend in (None, 'nccl', 'gloo'):
        dist_cfg['backend'] = 'nccl' if cuda else 'gloo'
        if backend not in (None, dist_cfg['backend']):
            print_log(f'env_cfg.dist_cfg.backend={backend!r} -> {dist_cfg["backend"]!r} '
                      f'({"CUDA" if cuda else "no CUDA device"} on this machine)',
                      logger='current')
    if cuda or torch_dist.is_initialized():
        return
    if launcher in ('slurm', 'mpi'):
        _env_from_launcher(launcher)
    kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
    if 'timeout' in kwargs and not isinstance(kwargs['timeout'], timedelta):
        kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
    torch_dist.init_process_group(backend=dist_cfg['backend'],
                                  rank=int(os.environ['RANK']),
                                  world_size=int(os.environ['WORLD_SIZE']), **kwargs)
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper.setdefault('device_ids', None)
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def close_distributed() -> None:
    """End this process's process group, if any, after a completed run (tools/train.py and
    tools/test.py): once every rank is there, the group is destroyed before the interpreter
    exits, as PyTorch asks, instead of its threads being torn down with the process (a CPU
    2-process run once aborted at exit with "terminate called without an active
    exception")."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
