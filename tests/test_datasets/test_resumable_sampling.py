"""ResumableInfiniteSampler, the per-sample seeding of the ClustSeg datasets and
ResumableIterBasedTrainLoop: a resumed run starts its sampler at the trained position instead
of loading the trained batches again, and gets the batches (indices and augmentation) of an
uninterrupted run."""
import itertools
import pickle
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from clustseg.datasets import (BSDS500Dataset, ResumableInfiniteSampler, SampleIndex,
                               SampleSeedingMixin, SeededConcatDataset)

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]


def _stream(sampler, n):
    return [(int(i), i.seed) for i in itertools.islice(iter(sampler), n)]


def test_sampler_starts_anywhere_in_the_stream_of_its_rank():
    data = list(range(5))
    sampler = ResumableInfiniteSampler(data, seed=3)
    full = _stream(sampler, 17)  # over three passes of the 5 indices
    for p in range(3):  # each pass a permutation of the dataset
        assert sorted(i for i, _ in full[5 * p:5 * p + 5]) == data
    assert len({s for _, s in full}) == 17  # a seed per position
    for start in (1, 7, 12):
        sampler.start_at(start)
        assert _stream(sampler, 17 - start) == full[start:]
    sampler.start_at(0)
    assert _stream(sampler, 17) == full  # and back
    # rank 1 of 2: every other index of the same stream, seeded by its own positions
    ranked = ResumableInfiniteSampler(data, seed=3)
    ranked.rank, ranked.world_size = 1, 2
    assert [i for i, _ in _stream(ranked, 8)] == [i for i, _ in full[1:17:2]]
    assert not {s for _, s in _stream(ranked, 8)} & {s for _, s in full}
    with pytest.raises(ValueError, match='position must be >= 0'):
        sampler.start_at(-1)
    # the seed goes with the index to a DataLoader worker
    moved = pickle.loads(pickle.dumps(SampleIndex(4, 123)))
    assert (int(moved), moved.seed, type(moved)) == (4, 123, SampleIndex)


def _bsds(**kwargs):
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadSuperpixelAnnotations', annotator='random', with_all=False),
                dict(type='SuperpixelRandomResize', ratio_range=(0.5, 2.0)),
                dict(type='SuperpixelRandomCrop', crop_size=(48, 48),
                     pad_val=dict(img=0, seg=-1)),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackSuperpixelInputs')]
    return dict(type='BSDS500Dataset', data_root=str(ROOT / 'tests/data/bsds500'),
                data_prefix=dict(img_path='images/train', seg_map_path='groundTruth/train'),
                pipeline=pipeline, **kwargs)


def test_a_sample_augmentation_is_a_function_of_its_seed():
    """The same SampleIndex gives the same augmented sample whatever the global RNG state
    (a resumed run, another number of workers); another seed another augmentation. Through
    SeededConcatDataset too, which hands its parts plain indices."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ds = DATASETS.build(_bsds())
    concat = DATASETS.build(dict(type='SeededConcatDataset', datasets=[_bsds(), _bsds()]))
    assert isinstance(ds, BSDS500Dataset) and isinstance(concat, SeededConcatDataset)
    for dataset, index in ((ds, 3), (concat, len(ds) + 3)):
        outs = []
        for scramble in (0, 1):
            np.random.seed(100 + scramble)
            outs.append(dataset[SampleIndex(index, 7)])
        torch.testing.assert_close(outs[0]['inputs'], outs[1]['inputs'])
        torch.testing.assert_close(outs[0]['data_samples'].gt_sem_seg.data,
                                   outs[1]['data_samples'].gt_sem_seg.data)
        others = [dataset[SampleIndex(index, s)]['inputs'] for s in (8, 9, 10)]
        assert any(o.shape != outs[0]['inputs'].shape or not torch.equal(o, outs[0]['inputs'])
                   for o in others)


class _Model(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=F.cross_entropy(self.linear(inputs), data_samples))


class _Plain(Dataset):
    """Counts its loads; a sample's features are drawn from numpy's global RNG."""
    metainfo = dict(classes=('a', 'b'))
    loads = 0  # on the class: the Runner copies the dataset object

    def __len__(self):
        return 6

    def __getitem__(self, i):
        _Plain.loads += 1
        return dict(inputs=torch.from_numpy(np.random.randn(4)).float(),
                    data_samples=torch.tensor(int(i) % 2))


class _Data(SampleSeedingMixin, _Plain):
    """:class:`_Plain` with the ClustSeg datasets' per-sample seeding."""


class _RecordBatches(Hook):
    def __init__(self):
        self.batches = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches[runner.iter + 1] = data_batch['inputs'].clone()


def _runner(work_dir, data, max_iters, hooks, workers=0):
    return Runner(
        model=_Model(), work_dir=str(work_dir), experiment_name=f'resume_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=workers,
                              persistent_workers=workers > 0,
                              sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=4,
                                           by_epoch=False)),
        custom_hooks=hooks, randomness=dict(seed=0), default_scope='mmseg',
        log_level='WARNING', resume=True)


@pytest.mark.parametrize('workers', [0, 2])
def test_resumed_loop_loads_only_the_batches_it_trains(tmp_path, workers, capsys):
    """Resumed at iteration 4 of 7, the loop loads 3 batches (mmengine's loads the 4 trained
    ones again first), and they equal the uninterrupted run's batches 5-7; also with
    persistent DataLoader workers, whose first iterator (made with the loop) is reset."""
    whole = _RecordBatches()
    _runner(tmp_path / 'whole', _Data(), 7, [whole], workers).train()
    _runner(tmp_path / 'part', _Data(), 4, None, workers).train()
    resumed = _RecordBatches()
    _Plain.loads = 0
    _runner(tmp_path / 'part', _Data(), 7, [resumed], workers).train()
    assert sorted(resumed.batches) == [5, 6, 7]
    if workers == 0:  # counted in this process
        assert _Plain.loads == 3 * 2
    for it, batch in resumed.batches.items():
        torch.testing.assert_close(batch, whole.batches[it])
    assert 'does not seed' not in capsys.readouterr().out


def test_resuming_a_dataset_without_seeding_warns(tmp_path, capsys):
    """A dataset without SampleSeedingMixin resumes with the same samples but other draws
    of its random transforms: the loop says so."""
    _runner(tmp_path, _Plain(), 2, None).train()
    capsys.readouterr()
    _runner(tmp_path, _Plain(), 3, None).train()
    assert '_Plain does not seed its samples\' transforms' in capsys.readouterr().out


def test_seed_sample_seeds_python_and_numpy_random():
    """Transforms draw from Python's ``random`` (mmcv's RandomFlip, ...) and from numpy's: both
    repeat for the same SampleIndex seed and differ for another; a plain int seeds nothing."""
    import random

    from clustseg.datasets.samplers.resumable_infinite_sampler import seed_sample

    def draws(index):
        seed_sample(index)
        return [random.random() for _ in range(3)], np.random.rand(3).tolist()

    assert draws(SampleIndex(4, 123)) == draws(SampleIndex(9, 123))
    other = draws(SampleIndex(4, 124))
    assert other[0] != draws(SampleIndex(4, 123))[0] and other[1] != draws(SampleIndex(4, 123))[1]
    random.seed(7)
    np.random.seed(7)
    expected = [random.random() for _ in range(3)], np.random.rand(3).tolist()
    random.seed(7)
    np.random.seed(7)
    assert draws(4) == expected  # not seeded by a plain index
