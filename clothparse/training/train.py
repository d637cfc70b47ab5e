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

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from clothparse import runs
from clothparse.categories import CLASSES
from clothparse.datasets.prepare import prepare
from clothparse.devices import resolve_device
from clothparse.evaluation.evaluate import evaluate_split
from clothparse.images import IMAGENET_STATS
from clothparse.models import build_model, splitter
from clothparse.models.encoders import encoder_stats
from clothparse.models.losses import CompoundLoss
from clothparse.profiles import load_profile
from clothparse.runs import RunDir
from clothparse.training.augment import FlipRotateLighting
from clothparse.training.callbacks import FiniteLossGuard, PositionalSeed, RunRecorder, StopAtEpoch, TupleMixedPrecision
from clothparse.training.checkpoint import apply_checkpoint, checkpoint_state, read_checkpoint, remove_checkpoint
from clothparse.training.distributed import DataParallel, RankShardDL, World, sync_batchnorm, world
from clothparse.training.metrics import PooledIoU
from clothparse.training.optim import adam
from clothparse.weights import save_state_dict

if TYPE_CHECKING:
    from clothparse.datasets.prepare import Prepared
    from clothparse.profiles import Profile
    from clothparse.training.distributed import World


# --- data -----------------------------------------------------------------------------------
class StoreSegmentation(torch.utils.data.Dataset):
    """Rows of a :class:`clothparse.datasets.store.Store` as fastai ``(TensorImage, TensorMask)`` pairs (uint8 image).

    ``split_idx`` (0 train, 1 valid) is what a ``TfmdDL`` hands its transform pipelines at every epoch: fastai's
    random transforms (``split_idx = 0``) run only where it is 0, so without it no augmentation would run."""

    def __init__(self, store, indices, split_idx: int | None = None):
        self.store, self.indices = store, np.asarray(indices, dtype=np.int64)
        self.split_idx = split_idx

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        from fastai.vision.all import TensorImage, TensorMask

        j = int(self.indices[i])
        image = torch.from_numpy(np.array(self.store.images[j])).permute(2, 0, 1)  # copy: the memmap is read-only
        mask = torch.from_numpy(self.store.masks[j].astype(np.int64))
        return TensorImage(image), TensorMask(mask)


def augmentations(augment: bool = True) -> list:
    """The paper's 'rather conservative' augmentation: horizontal flip, small rotation, mild lighting —
    fastai's ``aug_transforms`` draws, applied on plain tensors (:mod:`clothparse.training.augment`)."""

    return [FlipRotateLighting()] if augment else []


def make_dataloaders(prepared, batch_size: int = 16, device: str = "cpu", augment: bool = True,
                     num_workers: int = 0, valid_batch_size: int | None = None, stats=IMAGENET_STATS,
                     batch_tfms: list | None = None, world: World | None = None):
    """fastai ``DataLoaders`` over the store: train (shuffled, augmented) and valid splits, normalised with
    ``stats`` = (mean, std), the encoder's (:func:`~clothparse.models.encoders.encoder_stats`).
    ``batch_tfms``: the train split's augmentation instead of :func:`augmentations` (``augment`` then unused).

    ``batch_size`` is the global batch: over several processes (``world``) the train loader is this rank's
    slice of it (:class:`~clothparse.training.distributed.RankShardDL`); the valid loader is the whole split."""
    from fastai.vision.all import DataLoaders, IntToFloatTensor, Normalize, TfmdDL


    world = world or World()
    train_idx, valid_idx = prepared.indices("train"), prepared.indices("valid")
    if len(train_idx) < batch_size:
        raise ValueError(f"train split has {len(train_idx)} images, fewer than one batch of {batch_size}")
    if len(valid_idx) == 0:
        raise ValueError("valid split is empty")
    norm = Normalize.from_stats(*stats, cuda=False)
    augment_tfms = augmentations(augment) if batch_tfms is None else batch_tfms
    train_ds = StoreSegmentation(prepared.store, train_idx, split_idx=0)
    train_tfms = dict(shuffle=True, drop_last=True, after_batch=[IntToFloatTensor(), *augment_tfms, norm],
                      device=device, num_workers=num_workers)
    if world.distributed:
        train_dl = RankShardDL(train_ds, rank=world.rank, world_size=world.size,
                               bs=world.batch_per_process(batch_size), **train_tfms)
    else:
        train_dl = TfmdDL(train_ds, bs=batch_size, **train_tfms)
    valid_dl = TfmdDL(StoreSegmentation(prepared.store, valid_idx, split_idx=1), bs=valid_batch_size or 2 * batch_size,
                      shuffle=False,
                      after_batch=[IntToFloatTensor(), norm],
                      device=device, num_workers=num_workers)
    return DataLoaders(train_dl, valid_dl, device=device)


def build_learner(model, dls, loss_func, lr: float, wd: float, run_dir: Path | None = None, amp: bool = False,
                  cbs: list | None = None, amp_dtype: str = "fp16", channels_last: bool = False):
    """A fastai ``Learner``: Adam with decoupled weight decay (fastai's, on torch's multi-tensor kernels:
    :mod:`clothparse.training.optim`), encoder/rest splitter, pooled IoU metric. ``amp``: mixed precision of
    ``amp_dtype`` ("fp16" with fastai's loss scaler, "bf16" without); ``channels_last``: fastai's
    ``ChannelsLast`` (the model in channels-last memory format)."""
    from fastai.callback.channelslast import ChannelsLast
    from fastai.learner import Learner


    if amp_dtype not in ("fp16", "bf16"):
        raise ValueError(f"amp_dtype must be 'fp16' or 'bf16', got {amp_dtype!r}")
    callbacks = [FiniteLossGuard(), *(cbs or [])]
    if amp:
        callbacks.append(TupleMixedPrecision(amp_mode=amp_dtype))
    if channels_last:
        callbacks.append(ChannelsLast())
    return Learner(dls, model, loss_func=loss_func, opt_func=adam, lr=lr, wd=wd,
                   splitter=splitter, metrics=[PooledIoU()], cbs=callbacks, path=run_dir or Path("."),
                   model_dir="checkpoints")


def resolve_amp_dtype(amp_dtype: str, device: str) -> str:
    """A profile's ``train.amp_dtype`` on ``device``: "auto" is bf16 where the GPU has it, else fp16; on a CPU
    always bf16 (the only half type a CPU computes natively)."""
    if not device.startswith("cuda"):
        if amp_dtype == "fp16":
            raise ValueError("train.amp on a CPU needs train.amp_dtype: bf16 (or auto): CPU fp16 kernels are "
                             "emulated and slower than fp32")
        return "bf16"
    if amp_dtype != "auto":
        return amp_dtype
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def compound_loss(profile: Profile) -> CompoundLoss:
    """The paper's compound loss with the profile's term weights (``loss``; the paper's by default)."""
    w = profile.loss
    return CompoundLoss(seg_weight=w.seg, class_weight=w.cls, box_weight=w.box)


@dataclass
class _Session:
    """What one process's share of a training run works with."""

    profile: Profile
    run: RunDir
    prepared: Prepared
    device: str                         # this process's: cuda:<local rank> over several GPUs
    amp: bool
    amp_dtype: str
    provenance: dict
    world: World
    learn: object = None
    history: list[dict] = field(default_factory=list)
    start: tuple[int, int] = (1, 0)     # (phase, epochs of that phase already done)
    frozen: bool = False


def train(profile: Profile | str, model: str, variant: str | None = None, force: bool = False, progress: bool = True,
          prepared: Prepared | None = None, stop_after_epochs: int | None = None, seed: int | None = None) -> Path:
    """Train one model of a profile; return its run folder. A completed run is reused unless ``force``.

    The steps: open the run folder, build the learner, resume from a checkpoint if there is a whole one,
    fit the two phases, finish (weights, valid metrics, COMPLETE). ``stop_after_epochs`` ends this process's
    work after that many epochs (used to test resume). ``variant`` defaults to the data the profile's models
    train on (``profile.main_variant``: refined where the profile refines, else base). ``seed`` trains that
    seed's run (one of the model's seeds, ``train.model_seeds`` or ``train.seeds``, or any other); default
    :meth:`Profile.default_seed`: ``train.seed`` where the model trains it, else the model's first seed.

    Started by torchrun (``WORLD_SIZE`` > 1), the processes train the run together, data-parallel, with the
    profile's batch as the global batch (:mod:`clothparse.training.distributed`); rank 0 writes the run folder.
    """

    profile = load_profile(profile)
    profile = profile.with_seed(profile.default_seed(model) if seed is None else seed)
    variant = variant or profile.main_variant
    with world(resolve_device(profile.device)) as w:
        w.batch_per_process(profile.train.batch_size)  # refuse a batch the processes cannot share before any work
        return _train(profile, model, variant, force, progress, prepared, stop_after_epochs, w)


def _train(profile: Profile, model: str, variant: str, force: bool, progress: bool, prepared: Prepared | None,
           stop_after_epochs: int | None, world: World) -> Path:

    prepared = prepared or world.in_turn(lambda: prepare(profile, variant=variant, progress=progress))
    run = RunDir.for_training(profile, model, variant, prepared.store.meta["key"])
    if world.from_main(lambda: run.is_complete() and not force):
        return run.path
    session = _open_run(profile, model, variant, run, prepared, force, world)
    _build(session, model, progress)
    _resume(session)
    t0 = time.perf_counter()
    finished = _fit_phases(session, stop_after_epochs)
    if finished and world.is_main:
        _finish(session, time.perf_counter() - t0)
    world.barrier()  # every process returns once rank 0 has written what it returns
    return run.path


def _open_run(profile: Profile, model: str, variant: str, run: RunDir, prepared: Prepared, force: bool,
              world: World) -> _Session:
    """Create (or reopen) the run folder; write its params and provenance (rank 0)."""
    from fastai.torch_core import set_seed


    device = resolve_device(profile.device)
    set_seed(profile.train.seed, reproducible=True)
    amp = profile.train.amp is True or (profile.train.amp == "auto" and device.startswith("cuda"))
    amp_dtype = resolve_amp_dtype(profile.train.amp_dtype, device) if amp else profile.train.amp_dtype
    prov = {}
    if world.is_main:
        if force and run.path.exists():
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.failed_path.unlink(missing_ok=True)
        runs.write_json(run.params_path, {
            **runs.training_params(profile, model, variant), "profile": profile.name,
            "store_key": prepared.store.meta["key"], "data_root": str(prepared.data_root), "device": device,
            "amp": amp, "amp_dtype": amp_dtype if amp else None, "classes": list(CLASSES),
            "loss": dataclasses.asdict(profile.loss),
            "normalisation": dict(zip(("mean", "std"), encoder_stats(profile.encoder_name))),
            "profile_full": profile.to_dict()})
        prov = runs.read_json(run.provenance_path) if run.provenance_path.is_file() else {
            **runs.provenance(device, profile.train.seed), "processes": world.describe(profile.train.batch_size)}
        prov.setdefault("resumes", [])
    return _Session(profile, run, prepared, world.device(device), amp, amp_dtype, prov, world)


def _build(s: _Session, model: str, progress: bool) -> None:
    """The model, its data loaders and the fastai Learner (and, over several processes, its DDP wrapper)."""

    cfg = s.profile.train
    net = build_model(model, input_size=s.profile.size, encoder_name=s.profile.encoder_name,
                      encoder_weights=s.profile.encoder_weights)
    net = sync_batchnorm(net, s.world, s.device)
    dls = make_dataloaders(s.prepared, batch_size=cfg.batch_size, device=s.device, augment=cfg.augment,
                           num_workers=cfg.num_workers, stats=encoder_stats(s.profile.encoder_name), world=s.world)
    cbs = [DataParallel(s.world)] if s.world.distributed else []
    s.learn = build_learner(net, dls, compound_loss(s.profile), lr=cfg.lr_max, wd=cfg.wd, run_dir=s.run.path, amp=s.amp,
                            cbs=cbs, amp_dtype=s.amp_dtype, channels_last=cfg.channels_last)
    if not progress or not s.world.is_main:  # no bars, and no raw epoch lists printed by fastai's Recorder either
        s.learn.remove_cbs([cb for cb in s.learn.cbs if type(cb).__name__ == "ProgressCallback"])
        s.learn.logger = lambda *args, **kwargs: None


def _resume(s: _Session) -> None:
    """Continue from the last complete epoch when a whole checkpoint is there; otherwise start over.

    Rank 0 reads the checkpoint; every process loads the same states from it."""

    state, why_not = s.world.from_main(lambda: checkpoint_state(s.run))
    if state is None and why_not != "no checkpoint" and s.world.is_main:
        print(f"{s.run.path}: resume checkpoint incomplete ({why_not}); training from the start")
        remove_checkpoint(s.run)
    if state is not None:
        s.start = (int(state["phase"]), int(state["epochs_done"]))
    # Freeze/unfreeze *before* a checkpoint is loaded: both rebuild the optimizer's state, which the
    # checkpoint then restores. Phase 1 (if any) runs frozen; phase 2 unfrozen.
    s.frozen = s.profile.train.epochs_frozen > 0 and s.start[0] == 1
    s.learn.freeze() if s.frozen else s.learn.unfreeze()
    if state is not None:
        apply_checkpoint(s.learn, s.world.from_main(lambda: read_checkpoint(s.run)))
        s.history = list(state["history"])
        s.provenance.get("resumes", []).append({"at": runs.now(), "phase": s.start[0], "epochs_done": s.start[1],
                                                "world_size": s.world.size})
    if s.world.is_main:
        runs.write_json(s.run.provenance_path, s.provenance)


def _fit_phases(s: _Session, stop_after_epochs: int | None) -> bool:
    """Fit what is left of phase 1 (frozen) and phase 2 (unfrozen); False when this process stopped early."""

    cfg = s.profile.train
    start_phase, start_epoch = s.start
    done_now = 0
    for phase, n_epochs in ((1, cfg.epochs_frozen), (2, cfg.epochs_unfrozen)):
        first = start_epoch if phase == start_phase else 0
        if phase < start_phase or first >= n_epochs:
            continue
        if phase == 2 and s.frozen:
            s.learn.unfreeze()
            s.frozen = False
        fit_to = n_epochs
        if stop_after_epochs is not None:
            if stop_after_epochs - done_now <= 0:
                return False
            fit_to = min(n_epochs, first + stop_after_epochs - done_now)
        # the one-cycle schedule spans the whole phase even when this process stops early
        s.learn.fit_one_cycle(n_epochs, lr_max=cfg.lr_max, wd=cfg.wd, start_epoch=first,
                              cbs=[RunRecorder(s.run, phase, s.history, s.world),
                                   PositionalSeed(cfg.seed, phase, s.world.rank),
                                   *([StopAtEpoch(fit_to)] if fit_to < n_epochs else [])])
        done_now += fit_to - first
        if fit_to < n_epochs:
            return False
    return True


def _finish(s: _Session, seconds: float) -> None:
    """Weights, the valid split's scores, provenance, COMPLETE; then drop the resume checkpoint (rank 0)."""

    save_state_dict(s.learn.model.state_dict(), s.run.weights_path)
    valid = evaluate_split(s.learn.model, s.prepared.store, s.prepared.indices("valid"), device=s.device,
                           batch_size=s.profile.evaluate.batch_size, progress=False,
                           stats=encoder_stats(s.profile.encoder_name))
    runs.write_json(s.run.metrics_path, {"valid": valid["summary"], "train_seconds_this_process": seconds,
                                         "epochs": len(s.history)})
    s.provenance["finished"] = runs.now()
    runs.write_json(s.run.provenance_path, s.provenance)
    s.run.mark_complete(epochs=len(s.history))
    if not s.profile.train.keep_checkpoint:
        # complete runs are never resumed, and the checkpoint is ~3x the model (Adam's two moments)
        remove_checkpoint(s.run)
