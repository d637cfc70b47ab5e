"""Data-parallel training of one model over several processes, launched by torchrun (``torch.distributed.run``).

``torchrun --nproc_per_node N -m clothparse.cli train …`` starts N copies of ``clothparse train``; torchrun sets
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous address, and :func:`world` joins them into one
process group: NCCL with one GPU per local rank, gloo on CPUs. One process (``WORLD_SIZE`` unset or 1) is the
plain single-process run, and nothing here changes it. What keeps the run the paper's:

- the global batch is the profile's ``train.batch_size``: every epoch's shuffle is one permutation on every rank
  (seeded from the schedule position), and rank r takes the r-th slice of ``batch_size / N`` images of each
  global batch (:class:`RankShardDL`), so the N slices of a step are the images one process would have batched,
  an epoch has a single process's number of optimizer steps and the one-cycle schedule is the same;
- DDP averages the ranks' gradients: the gradient of the mean loss over the global batch;
- BatchNorm: on GPUs ``SyncBatchNorm``, statistics over the global batch; torch has no CPU SyncBatchNorm, so on
  CPUs each rank normalises with the statistics of its own slice;
- rank 0 validates the whole valid split every epoch, on the model it checkpoints, and is the only process that
  reads or writes the run folder; what the others need of it (is the run complete? the resume checkpoint) it
  broadcasts, so the run folder need only be on rank 0's machine.

The run folder is the single-process run's (the same id: the number of processes is not a parameter of the
trained model); ``provenance.json`` records the world size, backend and per-process batch.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from fastai.callback.core import Callback, CancelValidException
from fastai.data.core import TfmdDL
from torch.nn.parallel import DistributedDataParallel

__all__ = ["World", "world", "RankShardDL", "DataParallel", "unwrap", "sync_batchnorm"]


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one training run."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, device: str) -> str:
        """The device of this rank: its local GPU where the run trains on CUDA."""
        return f"cuda:{self.local_rank}" if self.distributed and device.startswith("cuda") else device

    def batch_per_process(self, batch_size: int) -> int:
        """``batch_size`` split evenly over the processes; a ValueError when it cannot be."""
        if batch_size % self.size:
            raise ValueError(f"train.batch_size {batch_size} (the global batch) is not divisible by the {self.size} "
                             f"processes of this run (WORLD_SIZE={self.size}); choose a batch size that is a multiple "
                             f"of {self.size} or start fewer processes")
        return batch_size // self.size

    def describe(self, batch_size: int) -> dict:
        """What provenance.json records of the processes that trained a run."""
        return {"world_size": self.size, "backend": self.backend, "batch_per_process": batch_size // self.size}

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank (pickled between this run's own processes)."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def from_main(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed on rank 0 and broadcast; an exception it raised is raised on every rank."""
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except (OSError, ValueError) as err:
                error = err
        result, error = self.broadcast((result, error))
        if error is not None:
            raise error
        return result

    def in_turn(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on rank 0 first, then on the other local rank 0s, then on the rest: what rank 0 writes (the
        data, its stores) the others find cached instead of writing the same files at the same time."""
        result = None
        for turn in (self.is_main, not self.is_main and self.local_rank == 0, self.local_rank != 0):
            if turn:
                result = fn()
            self.barrier()
        return result

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise sum over the ranks (a copy; the input is unchanged)."""
        out = values.clone()
        if self.distributed:
            torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
        return out


@contextmanager
def world(device: str) -> Iterator[World]:
    """This process's :class:`World` from torchrun's environment, the process group joined for the duration
    (left again if this call joined it). ``device`` (``cpu``/``cuda``) picks the backend."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        yield World()
        return
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    joined = not torch.distributed.is_initialized()
    if joined:
        if cuda:
            if local_rank >= torch.cuda.device_count():
                raise RuntimeError(f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible; start "
                                   "at most one process per GPU (torchrun --nproc_per_node)")
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield World(rank, local_rank, torch.distributed.get_world_size(), torch.distributed.get_backend())
    finally:
        if joined:
            torch.distributed.destroy_process_group()


class RankShardDL(TfmdDL):
    """One rank's share of each global batch: the r-th ``bs`` images of every ``bs × world_size`` of the epoch's
    permutation, which is the same on every rank (fastai draws it from ``self.rng``, seeded alike on every rank by
    :class:`~clothparse.training.callbacks.PositionalSeed`). The last incomplete global batch is dropped."""

    def __init__(self, dataset=None, rank: int = 0, world_size: int = 1, **kwargs):
        self.rank, self.world_size = int(rank), int(world_size)
        super().__init__(dataset, **kwargs)

    def __len__(self) -> int:
        return self.n // (self.bs * self.world_size)

    def get_idxs(self) -> list:
        idxs = list(super().get_idxs())
        per, step = self.bs, self.bs * self.world_size
        return [idxs[b * step + self.rank * per + i] for b in range(len(self)) for i in range(per)]

    def new(self, dataset=None, cls=None, **kwargs):
        return super().new(dataset, cls, **{"rank": self.rank, "world_size": self.world_size, **kwargs})


class DataParallel(Callback):
    """Wrap the model in ``DistributedDataParallel`` for each fit (a phase: which parameters train changes
    between them). Rank 0 alone validates, on the bare model; the other ranks skip validation and wait for it
    at the next collective (the first gradient all-reduce, the next phase's wrap, a barrier)."""

    order = 11  # fastai's own DistributedTrainer's: after TrainEvalCallback has set train/eval mode

    def __init__(self, world: World):
        self.world = world

    def before_fit(self):
        self.module = self.learn.model
        device = next(self.module.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        self.wrapped = DistributedDataParallel(self.module, device_ids=ids)
        self.learn.model = self.wrapped
        # fastai's metrics all-gather what they accumulate whenever WORLD_SIZE > 1: rank 0 validating alone
        # would wait for the others there, so the learner's metrics keep to this process's values
        self.learn.to_detach = _local_detach

    def before_validate(self):
        if not self.world.is_main:
            raise CancelValidException()
        self.learn.model = self.module

    def after_validate(self):
        self.learn.model = self.wrapped

    def after_fit(self):
        self.learn.model = self.module
        del self.learn.to_detach


def _local_detach(b, cpu: bool = True, gather: bool = True):
    from fastai.torch_core import to_detach

    return to_detach(b, cpu, gather=False)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself, outside a DistributedDataParallel wrapper (its state dict without ``module.``)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def sync_batchnorm(model: torch.nn.Module, world: World, device: str) -> torch.nn.Module:
    """BatchNorm over the global batch where torch can (GPUs); the model unchanged otherwise."""
    if world.distributed and device.startswith("cuda"):
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model
