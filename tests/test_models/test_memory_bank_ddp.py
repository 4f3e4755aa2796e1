"""2-process gloo test: every rank ends with identical memory-bank queues, also when the ranks
hold different batch sizes (and a rank holds none of a class)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        from clustseg.models.initializers import MemoryBankInitializer
        torch.manual_seed(0)  # same weights on both ranks
        bank = MemoryBankInitializer(num_classes=2, feat_dims=1, embed_dims=4, queue_size=16,
                                     samples_per_class=4).train()
        b = rank + 1  # uneven batches: 1 image on rank 0, 2 on rank 1
        feats = torch.full((b, 1, 2, 2), float(rank + 1))  # rank 0 sees 1s, rank 1 sees 2s
        gt = torch.full((b, 2, 2), rank, dtype=torch.long)  # rank r only has class r
        bank.update(feats, gt)
        torch.save({k: v for k, v in bank.state_dict().items()
                    if k in ('queue', 'ptr', 'count')}, os.path.join(out_dir, f'{rank}.pt'))
        # both ranks leave their collectives before either tears the group down (a rank that
        # destroyed it while the other was still in gloo's send / recv aborted once in CI)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_memory_bank_synchronised_across_two_gloo_ranks(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    s0 = torch.load(tmp_path / '0.pt', weights_only=True)
    s1 = torch.load(tmp_path / '1.pt', weights_only=True)
    for k in s0:
        torch.testing.assert_close(s0[k], s1[k])
    # each rank's local class reached every rank's queue
    assert s0['count'].tolist() == [4, 8]  # class 1: 4 samples from each of rank 1's images
    assert s0['queue'][0, :4, 0].tolist() == [1.0] * 4
    assert s0['queue'][1, :8, 0].tolist() == [2.0] * 8
