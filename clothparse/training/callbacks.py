"""fastai callbacks of a clothparse training run, at module level as fastai's own ``callback/*.py`` are.

- :class:`TupleMixedPrecision` — fastai's AMP for models whose output tuple may hold ``None``;
- :class:`FiniteLossGuard` — stop at the first non-finite loss with a message that says where;
- :class:`RunRecorder` — one history row per epoch (every loss term) and a resumable checkpoint;
- :class:`PositionalSeed` — reseed every random source from the schedule position, so a resumed run draws
  exactly what an uninterrupted one draws;
- :class:`StopAtEpoch` — end a fit early (a process's share of a longer schedule; used to test resume).

The checkpoint ``RunRecorder`` writes is :mod:`clothparse.training.checkpoint`; the IoUs as fastai metrics are
:mod:`clothparse.training.metrics`.
"""
from __future__ import annotations

import random
import time

import numpy as np
import pandas as pd
import torch
from fastai.callback.core import Callback, CancelFitException
from fastai.callback.fp16 import MixedPrecision

from clothparse.runs import RunDir
from clothparse.training.checkpoint import save_checkpoint
from clothparse.training.distributed import World

__all__ = ["TupleMixedPrecision", "FiniteLossGuard", "RunRecorder", "PositionalSeed", "StopAtEpoch",
           "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf: the run stops instead of writing garbage."""


class TupleMixedPrecision(MixedPrecision):
    """fastai's AMP, for models whose output tuple may hold ``None`` (a missing branch), and on a CPU too.

    fastai's callback always enters CUDA autocast, which leaves a CPU model in fp32 without a word; here a
    model on any other device autocasts on its own device. Only bf16 there: CPU fp16 kernels are emulated."""

    def before_fit(self):
        super().before_fit()
        device = next(self.learn.model.parameters()).device
        if device.type == "cuda":
            return
        if self.autocast.fast_dtype != torch.bfloat16:
            raise ValueError(f"mixed precision on {device.type} is bf16 only (amp_mode='bf16'): its fp16 kernels "
                             "are emulated and slower than fp32")
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def after_pred(self):
        self.learn.pred = type(self.pred)(*(p.float() if p is not None and p.is_floating_point() else p
                                            for p in self.pred))


class FiniteLossGuard(Callback):
    """Stop with a clear message at the first non-finite loss.

    On a CPU every batch's loss is checked as it comes. On an accelerator reading the loss back would make the
    host wait for the device at every batch, so the iteration of the first non-finite loss is kept *on the
    device* and read every ``check_every`` batches and at the end of each training and validation pass — before
    :class:`RunRecorder` writes the epoch's checkpoint, so no checkpoint holds weights a bad step updated.
    ``defer``: force either way (``None``: deferred on anything but a CPU)."""

    order = 5

    def __init__(self, check_every: int = 50, defer: bool | None = None):
        if check_every < 1:
            raise ValueError(f"check_every must be ≥ 1, got {check_every}")
        self.check_every, self.defer = check_every, defer

    def before_train(self):
        self.first_bad = None

    before_validate = before_train

    def after_loss(self):
        loss = self.learn.loss.detach()
        if not (self.defer if self.defer is not None else loss.device.type != "cpu"):
            if not torch.isfinite(loss).all():
                self._raise(self.iter, float(loss.float().mean()))
            return
        if self.first_bad is None:
            self.first_bad = torch.full((), -1, dtype=torch.int64, device=loss.device)
        # a fill kernel and a where: the host does not wait for the device
        bad = ~torch.isfinite(loss).all() & (self.first_bad < 0)
        self.first_bad = torch.where(bad, torch.full_like(self.first_bad, self.iter), self.first_bad)
        if (self.iter + 1) % self.check_every == 0:
            self._check()

    def after_train(self):
        self._check()

    after_validate = after_train

    def _check(self):
        if self.first_bad is not None and int(self.first_bad) >= 0:  # int(): the one read-back
            self._raise(int(self.first_bad), None)

    def _raise(self, iteration: int, value: float | None):
        terms = getattr(self.learn.loss_func, "last_terms", {}) if value is not None else "not kept on a device"
        what = f"non-finite loss {value}" if value is not None else "non-finite loss"
        raise NonFiniteLossError(
            f"{what} at epoch {self.epoch}, iteration {iteration} ({'train' if self.training else 'valid'}; "
            f"terms {terms}). Lower lr_max or check the data.")


class RunRecorder(Callback):
    """Per-epoch history (every loss term, valid pooled IoU) and a resumable checkpoint.

    Over several processes (``world``) the train terms are summed over every rank's slice of the global
    batches, and rank 0 alone (which alone validates) writes the history and the checkpoint."""

    order = 60  # after fastai's Recorder (50) has its epoch record

    def __init__(self, run: RunDir, phase: int, history: list[dict], world: World | None = None):
        self.run, self.phase, self.history = run, phase, history
        self.world = world or World()

    def before_epoch(self):
        self.sums = {"train": {}, "valid": {}}
        self.counts = {"train": 0, "valid": 0}
        self.t0 = time.perf_counter()

    def after_loss(self):
        part = "train" if self.training else "valid"
        n = self.learn.yb[0].shape[0]
        # summed on the device in float64: a float() per term and batch would synchronise a GPU each time
        for k, v in getattr(self.learn.loss_func, "last_term_tensors", {}).items():
            self.sums[part][k] = self.sums[part].get(k, 0.0) + v.double() * n
        self.counts[part] += n

    def after_train(self):
        if not self.world.distributed:
            return
        # every rank trained the same number of batches, with the same loss terms in the same order
        names = list(self.sums["train"])
        device = self.learn.yb[0].device if self.learn.yb else "cpu"
        mine = torch.stack([*(self.sums["train"][k] for k in names),
                            torch.tensor(float(self.counts["train"]), dtype=torch.float64, device=device)])
        total = self.world.sum(mine)
        self.sums["train"] = dict(zip(names, total[:-1]))
        self.counts["train"] = int(round(float(total[-1])))

    def after_epoch(self):
        if self.counts["train"] == 0:  # an epoch fastai's SkipToEpoch skipped on resume: nothing to record
            return
        if not self.world.is_main:  # it skipped validation: its epoch record has no valid columns
            return
        row = self._epoch_row()
        self.history.append(row)
        # columns in the order of a fresh row (history reloaded from a checkpoint has sorted keys)
        pd.DataFrame(self.history, columns=list(row)).to_csv(self.run.history_path, index=False)
        save_checkpoint(self.learn, self.run, self.phase, self.epoch + 1, self.history)

    def _epoch_row(self) -> dict:
        rec = self.learn.recorder
        names = list(rec.metric_names[1:-1]) if rec.add_time else list(rec.metric_names[1:])
        values = dict(zip(names, self.learn.final_record))
        row = {"phase": self.phase, "epoch": self.epoch, "global_epoch": len(self.history),
               "lr": float(self.learn.opt.hypers[-1]["lr"]), "seconds": time.perf_counter() - self.t0}
        row.update({k: float(v) for k, v in values.items() if v is not None})
        for part in ("train", "valid"):
            for k, v in self.sums[part].items():
                row[f"{part}_{k}"] = float(v) / max(self.counts[part], 1)
        if "train_total" in row:
            # the epoch's exact mean, not fastai's smoothed display value: that one carries over from
            # the previous epoch, restarts on resume, and would make a resumed history differ
            row["train_loss"] = row["train_total"]
        return row


class PositionalSeed(Callback):
    """Reseed every random source from (seed, phase, epoch, batch) before each epoch and batch.

    Shuffling, augmentation and dropout then depend only on the position in the schedule, not on what
    ran before in this process — so a run resumed from a checkpoint draws exactly what an uninterrupted
    run draws (on a CPU, bit for bit). Over several processes every rank draws the epoch's shuffle alike
    (they split one permutation) and, from ``rank``, augmentations and dropout of its own; rank 0 draws
    what a single process draws."""

    order = -20

    def __init__(self, seed: int, phase: int, rank: int = 0):
        self.seed, self.phase, self.rank = int(seed), int(phase), int(rank)

    def _reseed(self, batch: int, rank: int = 0) -> int:
        s = (self.seed * 1_000_003 + self.phase * 10_007 + self.epoch * 1_009 + batch + 1) % 2**31
        if rank:
            s = random.Random(f"{s}/rank{rank}").getrandbits(31)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        return s

    def before_epoch(self):
        self.learn.dls.train.rng = random.Random(self._reseed(-1))

    def before_batch(self):
        if self.training:
            self._reseed(self.iter, self.rank)


class StopAtEpoch(Callback):
    """Stop fitting once ``n`` epochs of the schedule are done (the one-cycle schedule still spans them all)."""

    order = 70

    def __init__(self, n: int):
        self.n = int(n)

    def after_epoch(self):
        if self.epoch + 1 >= self.n:
            raise CancelFitException()
