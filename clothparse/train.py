"""Training with fastai — the paper's protocol (section 3.4) around any model of ``build_model``.

Phase 1 trains with the encoder frozen, phase 2 with everything unfrozen, each a one-cycle
schedule (``fit_one_cycle``) with Adam and decoupled weight decay. Batch augmentations run on the
device on image and mask together; the loss derives class presence and boxes from the augmented
mask. Every epoch writes a checkpoint with the model and optimizer, and every random source is reseeded
from the schedule position, so a killed run resumes from its last complete epoch drawing the same
shuffles, augmentations and dropout as an uninterrupted run. A complete run keeps
``model.safetensors`` and drops that checkpoint (three times the model's size: Adam's two moments),
unless the profile's ``train.keep_checkpoint`` is true.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import runs
from .categories import CLASSES

CHECKPOINT = "checkpoints/last.pt"
HISTORY = "history.csv"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf: the run stops instead of writing garbage."""


# --- data -----------------------------------------------------------------------------------
class StoreSegmentation(torch.utils.data.Dataset):
    """Rows of a :class:`clothparse.store.Store` as fastai ``(TensorImage, TensorMask)`` pairs (uint8 image)."""

    def __init__(self, store, indices):
        self.store, self.indices = store, np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        from fastai.vision.all import TensorImage, TensorMask

        j = int(self.indices[i])
        image = torch.from_numpy(np.array(self.store.images[j])).permute(2, 0, 1)  # copy: the memmap is read-only
        mask = torch.from_numpy(self.store.masks[j].astype(np.int64))
        return TensorImage(image), TensorMask(mask)


def augmentations(augment: bool = True) -> list:
    """The paper's 'rather conservative' augmentation: horizontal flip, mild lighting, small rotation.

    fastai's affine transforms treat ``TensorMask`` with nearest interpolation, so image and mask stay aligned.
    """
    from fastai.vision.all import aug_transforms

    if not augment:
        return []
    return aug_transforms(do_flip=True, flip_vert=False, max_rotate=10.0, max_zoom=1.0, max_lighting=0.2,
                          max_warp=0.0, p_affine=0.75, p_lighting=0.75, pad_mode="zeros")


def make_dataloaders(prepared, batch_size: int = 16, device: str = "cpu", augment: bool = True,
                     num_workers: int = 0, valid_batch_size: int | None = None):
    """fastai ``DataLoaders`` over the store: train (shuffled, augmented) and valid splits."""
    from fastai.vision.all import DataLoaders, IntToFloatTensor, Normalize, TfmdDL, imagenet_stats

    train_idx, valid_idx = prepared.indices("train"), prepared.indices("valid")
    if len(train_idx) < batch_size:
        raise ValueError(f"train split has {len(train_idx)} images, fewer than one batch of {batch_size}")
    if len(valid_idx) == 0:
        raise ValueError("valid split is empty")
    norm = Normalize.from_stats(*imagenet_stats, cuda=False)
    train_dl = TfmdDL(StoreSegmentation(prepared.store, train_idx), bs=batch_size, shuffle=True, drop_last=True,
                      after_batch=[IntToFloatTensor(), *augmentations(augment), norm], device=device,
                      num_workers=num_workers, split_idx=0)
    valid_dl = TfmdDL(StoreSegmentation(prepared.store, valid_idx), bs=valid_batch_size or 2 * batch_size,
                      shuffle=False, after_batch=[IntToFloatTensor(), Normalize.from_stats(*imagenet_stats, cuda=False)],
                      device=device, num_workers=num_workers, split_idx=1)
    return DataLoaders(train_dl, valid_dl, device=device)


# --- callbacks ------------------------------------------------------------------------------
def _callbacks():
    from fastai.callback.core import Callback
    from fastai.callback.fp16 import MixedPrecision

    class TupleMixedPrecision(MixedPrecision):
        """fastai's AMP, for models whose output tuple may hold ``None`` (a missing branch)."""

        def after_pred(self):
            self.learn.pred = type(self.pred)(*(p.float() if p is not None and p.is_floating_point() else p
                                                for p in self.pred))

    class FiniteLossGuard(Callback):
        """Stop with a clear message at the first non-finite loss."""

        order = 5

        def after_loss(self):
            if not torch.isfinite(self.learn.loss).all():
                terms = getattr(self.learn.loss_func, "last_terms", {})
                raise NonFiniteLossError(
                    f"non-finite loss {float(self.learn.loss)} at epoch {self.epoch}, iteration {self.iter} "
                    f"({'train' if self.training else 'valid'}; terms {terms}). Lower lr_max or check the data.")

    class RunRecorder(Callback):
        """Per-epoch history (every loss term, valid pooled IoU) and a resumable checkpoint."""

        order = 60  # after fastai's Recorder (50) has its epoch record

        def __init__(self, run_dir: Path, phase: int, history: list[dict]):
            self.run_dir, self.phase, self.history = Path(run_dir), phase, history

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

        def after_epoch(self):
            if self.counts["train"] == 0:  # an epoch fastai's SkipToEpoch skipped on resume: nothing to record
                return
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
            self.history.append(row)
            # columns in the order of a fresh row (history reloaded from a checkpoint has sorted keys)
            pd.DataFrame(self.history, columns=list(row)).to_csv(self.run_dir / HISTORY, index=False)
            save_checkpoint(self.learn, self.run_dir, self.phase, self.epoch + 1, self.history)

    class PositionalSeed(Callback):
        """Reseed every random source from (seed, phase, epoch, batch) before each epoch and batch.

        Shuffling, augmentation and dropout then depend only on the position in the schedule, not on what
        ran before in this process — so a run resumed from a checkpoint draws exactly what an uninterrupted
        run draws (on a CPU, bit for bit)."""

        order = -20

        def __init__(self, seed: int, phase: int):
            self.seed, self.phase = int(seed), int(phase)

        def _reseed(self, batch: int) -> int:
            s = (self.seed * 1_000_003 + self.phase * 10_007 + self.epoch * 1_009 + batch + 1) % 2**31
            random.seed(s)
            np.random.seed(s)
            torch.manual_seed(s)
            return s

        def before_epoch(self):
            self.learn.dls.train.rng = random.Random(self._reseed(-1))

        def before_batch(self):
            if self.training:
                self._reseed(self.iter)

    return TupleMixedPrecision, FiniteLossGuard, RunRecorder, PositionalSeed


# --- checkpoints ----------------------------------------------------------------------------
def save_checkpoint(learn, run_dir: Path, phase: int, epochs_done: int, history: list[dict]) -> None:
    """Model and optimizer (tensors, loadable with ``weights_only=True``) + JSON state, atomically.

    No random state is saved: :class:`PositionalSeed` reseeds every source from the schedule position."""
    path = Path(run_dir) / CHECKPOINT
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": learn.model.state_dict(), "opt": learn.opt.state_dict()}, tmp)
    state = {"phase": phase, "epochs_done": epochs_done, "history": history}
    runs.write_json(path.with_suffix(".json.tmp"), state)
    # the .pt is renamed first: a crash between the two renames leaves an older JSON, i.e. one epoch redone
    import os

    os.replace(tmp, path)
    os.replace(path.with_suffix(".json.tmp"), path.with_suffix(".json"))


def load_checkpoint(learn, run_dir: Path) -> dict | None:
    """Restore model and optimizer state into ``learn``; return the JSON state, or None if there is none."""
    path = Path(run_dir) / CHECKPOINT
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return None
    state = json.loads(meta.read_text())
    blob = torch.load(path, map_location="cpu", weights_only=True)
    learn.model.load_state_dict(blob["model"])
    if learn.opt is None:
        learn.create_opt()
    learn.opt.load_state_dict(blob["opt"])
    return state


# --- the run --------------------------------------------------------------------------------
def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return device


# train settings that do not change the trained model, so do not change its run id
_NOT_IN_RUN_ID = ("keep_checkpoint",)


def training_params(profile: dict, model: str, variant: str) -> dict:
    """Everything that changes a trained model (and so its run id)."""
    train_cfg = {k: v for k, v in profile["train"].items() if k not in _NOT_IN_RUN_ID}
    return {"model": model, "variant": variant, "size": list(profile["size"]), "train": train_cfg,
            "split": dict(profile["split"]), "encoder_weights": profile["encoder_weights"]}


def run_dir_for(profile: dict, model: str, variant: str, store_key: str) -> Path:
    """``<runs_dir>/<profile>/<model>-<hash of parameters and data>``."""
    from .profiles import runs_dir

    return runs_dir(profile) / runs.run_id(model, training_params(profile, model, variant), store_key)


def build_learner(model, dls, loss_func, lr: float, wd: float, run_dir: Path | None = None, fp16: bool = False,
                  cbs: list | None = None):
    """A fastai ``Learner``: Adam with decoupled weight decay (fastai's, on torch's multi-tensor kernels:
    :mod:`clothparse.optim`), encoder/rest splitter, pooled IoU metric."""
    from fastai.learner import Learner

    from .metrics import PooledIoU
    from .models import splitter
    from .optim import adam

    TupleMixedPrecision, FiniteLossGuard, _, _ = _callbacks()
    callbacks = [FiniteLossGuard(), *(cbs or [])]
    if fp16:
        callbacks.append(TupleMixedPrecision())
    return Learner(dls, model, loss_func=loss_func, opt_func=adam, lr=lr, wd=wd,
                   splitter=splitter, metrics=[PooledIoU()], cbs=callbacks, path=run_dir or Path("."),
                   model_dir="checkpoints")


def train(profile: dict | str, model: str, variant: str = "refined", force: bool = False, progress: bool = True,
          prepared=None, stop_after_epochs: int | None = None) -> Path:
    """Train one model of a profile; return its run folder. A completed run is reused unless ``force``.

    ``stop_after_epochs`` ends the process's work after that many epochs in total (used to test resume).
    """
    from fastai.torch_core import set_seed

    from .evaluate import evaluate_split
    from .losses import CompoundLoss
    from .models import build_model
    from .prepare import prepare
    from .profiles import load_profile

    profile = load_profile(profile) if not isinstance(profile, dict) else profile
    cfg = profile["train"]
    prepared = prepared or prepare(profile, variant=variant, progress=progress)
    store_key = prepared.store.meta["key"]
    params = training_params(profile, model, variant)
    run_dir = run_dir_for(profile, model, variant, store_key)
    if runs.is_complete(run_dir) and not force:
        return run_dir
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / runs.FAILED).unlink(missing_ok=True)

    device = resolve_device(profile["device"])
    seed = int(cfg["seed"])
    set_seed(seed, reproducible=True)
    fp16 = cfg["fp16"] is True or (cfg["fp16"] == "auto" and device.startswith("cuda"))
    runs.write_json(run_dir / "params.json", {**params, "profile": profile["name"], "store_key": store_key,
                                                "data_root": str(prepared.data_root), "device": device, "fp16": fp16,
                                                "classes": list(CLASSES), "input_size": list(profile["size"]),
                                                "normalisation": "imagenet", "profile_full": profile})
    prov_path = run_dir / "provenance.json"
    prov = runs.read_json(prov_path) if prov_path.is_file() else runs.provenance(device, seed)
    prov.setdefault("resumes", [])

    net = build_model(model, input_size=tuple(profile["size"]), encoder_weights=profile["encoder_weights"])
    dls = make_dataloaders(prepared, batch_size=int(cfg["batch_size"]), device=device, augment=bool(cfg["augment"]),
                           num_workers=int(cfg.get("num_workers", 0)))
    _, _, RunRecorder, PositionalSeed = _callbacks()
    learn = build_learner(net, dls, CompoundLoss(), lr=float(cfg["lr_max"]), wd=float(cfg["wd"]), run_dir=run_dir,
                          fp16=fp16)
    if not progress:  # no bars, and no raw epoch lists printed by fastai's Recorder either
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
        learn.logger = lambda *args, **kwargs: None

    phases = [(1, int(cfg["epochs_frozen"])), (2, int(cfg["epochs_unfrozen"]))]
    history: list[dict] = []
    start_phase, start_epoch = 1, 0
    meta_path = (run_dir / CHECKPOINT).with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is not None:
        start_phase, start_epoch = meta["phase"], meta["epochs_done"]
    # Freeze/unfreeze *before* a checkpoint is loaded: both rebuild the optimizer's state, which the
    # checkpoint then restores. Phase 1 (if any) runs frozen; phase 2 unfrozen.
    frozen = phases[0][1] > 0 and start_phase == 1
    learn.freeze() if frozen else learn.unfreeze()
    if meta is not None:
        load_checkpoint(learn, run_dir)
        history = list(meta["history"])
        prov["resumes"].append({"at": runs.now(), "phase": start_phase, "epochs_done": start_epoch})
    runs.write_json(prov_path, prov)

    t0 = time.perf_counter()
    done_now = 0
    for phase, n_epochs in phases:
        first = start_epoch if phase == start_phase else 0
        if phase < start_phase or first >= n_epochs:
            continue
        if phase == 2 and frozen:
            learn.unfreeze()
            frozen = False
        n_fit_to = n_epochs
        if stop_after_epochs is not None:
            if stop_after_epochs - done_now <= 0:
                return run_dir
            n_fit_to = min(n_epochs, first + stop_after_epochs - done_now)
        recorder = RunRecorder(run_dir, phase, history)
        # the one-cycle schedule spans the whole phase even when this process stops early
        learn.fit_one_cycle(n_epochs, lr_max=float(cfg["lr_max"]), wd=float(cfg["wd"]), start_epoch=first,
                            cbs=[recorder, PositionalSeed(seed, phase),
                                 *([_StopAt(n_fit_to)] if n_fit_to < n_epochs else [])])
        done_now += n_fit_to - first
        if n_fit_to < n_epochs:
            return run_dir
    seconds = time.perf_counter() - t0

    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in learn.model.state_dict().items()}, str(run_dir / "model.safetensors"))
    valid = evaluate_split(learn.model, prepared.store, prepared.indices("valid"), device=device,
                           batch_size=int(profile["evaluate"]["batch_size"]), progress=False)
    runs.write_json(run_dir / "metrics.json", {"valid": valid["summary"], "train_seconds_this_process": seconds,
                                               "epochs": len(history)})
    prov["finished"] = runs.now()
    runs.write_json(prov_path, prov)
    runs.mark_complete(run_dir, {"epochs": len(history)})
    if not cfg.get("keep_checkpoint", False):
        # complete runs are never resumed; the checkpoint is ~3x the model (Adam's two moments) and
        # nine of them filled gigabytes of a small disk. A crash before this line only leaves it behind.
        remove_checkpoint(run_dir)
    return run_dir


def remove_checkpoint(run_dir: Path) -> None:
    """Delete the resume checkpoint of a run folder (the .pt and its JSON state)."""
    path = Path(run_dir) / CHECKPOINT
    for p in (path, path.with_suffix(".json"), path.with_suffix(".tmp"), path.with_suffix(".json.tmp")):
        p.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # not empty: something else lives there; leave it
        pass


class _StopAt:
    """Stop fitting after epoch ``n`` (exclusive) — a fastai callback built lazily (see ``train``)."""

    def __new__(cls, n: int):
        from fastai.callback.core import Callback, CancelFitException

        class StopAt(Callback):
            order = 70

            def after_epoch(self):
                if self.epoch + 1 >= n:
                    raise CancelFitException()

        return StopAt()
