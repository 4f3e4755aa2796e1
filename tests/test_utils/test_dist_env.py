"""The launcher environments of clustseg.utils.dist: the world size read before any process
group exists, and the torch.distributed variables set from a Slurm or Open MPI launch."""
import os

import pytest

from clustseg.utils import dist

TORCH_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


@pytest.fixture
def clean_env(monkeypatch):
    for names in dist.LAUNCHER_ENV.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name in TORCH_VARS + ('SLURM_NODELIST', ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize('launcher,var', [('pytorch', 'WORLD_SIZE'), ('slurm', 'SLURM_NTASKS'),
                                          ('mpi', 'OMPI_COMM_WORLD_SIZE')])
def test_launch_world_size_reads_the_launchers_variable(clean_env, launcher, var):
    assert dist.launch_world_size(launcher) == 1
    clean_env.setenv(var, '8')
    assert dist.launch_world_size(launcher) == 8
    assert dist.launch_world_size('none') == 1
    with pytest.raises(ValueError, match="launcher must be one of"):
        dist.launch_world_size('torchrun')


def test_mpi_environment_becomes_torch_variables(clean_env):
    clean_env.setenv('OMPI_COMM_WORLD_RANK', '3')
    clean_env.setenv('OMPI_COMM_WORLD_SIZE', '4')
    dist._env_from_launcher('mpi')
    assert [os.environ[v] for v in TORCH_VARS] == ['3', '4', '0', '127.0.0.1', '29500']


def test_slurm_environment_keeps_what_is_set(clean_env):
    clean_env.setenv('SLURM_PROCID', '5')
    clean_env.setenv('SLURM_NTASKS', '16')
    clean_env.setenv('SLURM_LOCALID', '1')
    clean_env.setenv('MASTER_ADDR', 'node7')
    clean_env.setenv('RANK', '2')  # set by the user: kept
    dist._env_from_launcher('slurm')
    assert [os.environ[v] for v in TORCH_VARS] == ['2', '16', '1', 'node7', '29500']
