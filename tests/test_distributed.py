"""Data-parallel pieces without launching processes: each rank's loader takes its slice of every global batch
(together the single process's batches), the batch must divide among the processes, and the ranks' random
streams (rank 0's is the single process's). The two-process training itself is in test_train.py."""
import random

import pytest
import torch

from clothparse.training.callbacks import PositionalSeed
from clothparse.training.distributed import RankShardDL, World


class _Items(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (torch.tensor(i),)


def _epoch(dl, seed):
    dl.rng = random.Random(seed)  # what PositionalSeed does before every epoch, alike on every rank
    return [b[0].tolist() for b in dl]


@pytest.mark.parametrize("world_size", [2, 4])
def test_the_ranks_slices_are_the_single_process_batches(world_size):
    from fastai.data.core import TfmdDL

    n, global_bs = 37, 8
    single = _epoch(TfmdDL(_Items(n), bs=global_bs, shuffle=True, drop_last=True, num_workers=0), seed=11)
    shards = [_epoch(RankShardDL(_Items(n), rank=r, world_size=world_size, bs=global_bs // world_size,
                                 shuffle=True, drop_last=True, num_workers=0), seed=11) for r in range(world_size)]
    assert all(len(s) == len(single) == n // global_bs for s in shards)  # the same optimizer steps an epoch
    for step, batch in enumerate(single):
        # step by step, rank r holds the r-th slice of the single process's batch: no image twice, none left out
        assert sum((s[step] for s in shards), []) == batch


def test_the_global_batch_must_divide_among_the_processes():
    assert World(size=2).batch_per_process(8) == 4
    assert World().batch_per_process(7) == 7
    with pytest.raises(ValueError, match=r"train.batch_size 8 .* not divisible by the 3 processes"):
        World(rank=1, size=3).batch_per_process(8)


def test_rank_zero_draws_what_one_process_draws_and_the_others_their_own():
    class _Learn:  # the one attribute PositionalSeed reads
        epoch = 3

    draws = {}
    for rank in (0, 1, 2):
        cb = PositionalSeed(seed=0, phase=2, rank=rank)
        cb.learn = _Learn()
        cb._reseed(5, rank)
        draws[rank] = torch.rand(3)
    single = PositionalSeed(seed=0, phase=2)
    single.learn = _Learn()
    single._reseed(5)
    assert torch.equal(torch.rand(3), draws[0])
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])


def test_one_process_is_no_world():
    w = World()
    assert not w.distributed and w.is_main and w.device("cuda") == "cuda"
    assert w.broadcast({"a": 1}) == {"a": 1} and w.from_main(lambda: 5) == 5 and w.in_turn(lambda: 6) == 6
    assert World(rank=1, local_rank=1, size=2, backend="nccl").device("cuda") == "cuda:1"
    assert World(rank=1, local_rank=1, size=2, backend="gloo").device("cpu") == "cpu"
