"""Training throughput: clothparse's fastai training step vs a bare PyTorch loop, and the loader vs the model.

train
    clothparse's step — a fastai ``Learner`` from :func:`clothparse.training.train.build_learner` (Adam with decoupled
    weight decay, splitter, its callbacks), :class:`clothparse.models.losses.CompoundLoss`, ``fit_one_cycle`` as
    :func:`clothparse.training.train.train` calls it, fed by :func:`clothparse.training.train.make_dataloaders`
    over a real store
    (synthetic iMaterialist-layout JPEGs → :class:`IMaterialist` → :func:`build_store`, in a temp folder) with its
    batch augmentations on the device — against a bare PyTorch loop: the same architecture built fresh with the
    same seed, ``torch.optim.AdamW`` with fastai's hyper-parameters (betas (0.9, 0.99), eps 1e-5, same lr, weight
    decay off for norm layers and biases as fastai's ``wd_bn_bias=False``), the same loss, no fastai at all.
    The bare loop consumes batches *pre-collected from the same fastai train DataLoader* (augmented, normalised,
    already on the device, as plain tensors), so it measures the model step alone; the clothparse side pays for
    its loader, callbacks and optimizer. Both train everything (phase 2, unfrozen). Measured alternately in one
    process: after a warm-up of both, ``ROUNDS`` rounds (``CPU_ROUNDS`` in a full CPU run) of (clothparse k batches,
    bare k batches), every other round in the opposite order; the table shows
    the median images/s of each and the median of the rounds' clothparse / bare ratios (goal ≥ 0.9): a round's
    two halves run back to back, so its ratio is the least affected by other load on a shared machine (on a CPU
    the note adds the ratio per second of the process's CPU time, which other processes disturb less). A
    clothparse round times batches 1..k of a ``fit`` (from the end of batch 0 to the end of batch k, device
    synchronised there only): the per-fit start-up (iterator, shuffling) is a per-epoch cost, not a per-batch one.
loader
    The fastai train DataLoader alone (store rows → collate → device → IntToFloat, flip/rotate/lighting,
    Normalize; no model) vs the bare model step on the same batches: loader / model ≫ 1 means the loader is
    not the bottleneck (``num_workers=0``, as ``make_dataloaders`` defaults).
train_epoch
    Whole training epochs with each side's *own* loader and augmentation: clothparse's ``fit_one_cycle`` (fastai
    ``TfmdDL`` over the store, :class:`clothparse.training.augment.FlipRotateLighting` on the device, callbacks,
    optimizer)
    against a bare loop with a ``torch.utils.data.DataLoader`` over the same store rows and
    :func:`clothparse.training.augment.augment_batch` on plain tensors, so the ratio includes what loading and
    augmenting
    cost each side (``train``'s bare side skips both); and a third side, clothparse with fastai's own
    ``aug_transforms`` (the same draws, ``tests/test_augment.py``), to show what the plain-tensor augmentation
    saves. Batches 1..k of an epoch, each side first in turn; goal ≥ 0.95.
gpu_train
    For ``unet`` and ``extended_unet``: clothparse with mixed precision (``build_learner(..., amp=True)``, i.e.
    its ``TupleMixedPrecision`` callback = fastai's ``MixedPrecision``) vs a bare AMP loop (``torch.autocast``
    fp16 + ``GradScaler`` + AdamW), at 288×192, batch 16 and 64, alternately as in ``train``; plus the estimated
    epoch time for 30,429 images (the paper's iMaterialist training split). The bare side again trains on
    batches pre-collected from the clothparse DataLoader (real images, not random tensors). On a CPU fastai's and
    torch's CUDA autocast/GradScaler switch themselves off (fp32), and the sizes shrink (96×64, batch 4 and 8;
    quick: 64×64, batch 2 and 4, 1 batch × 2 rounds): a check that the bench runs, not a measurement.

Options (``bench/run.py --device cuda --size 288x192 --batch 16,64 --model unet --iters K --rounds R --threads N``,
or ``CLOTHPARSE_BENCH_DEVICE`` …): device ``cpu`` by default; ``train``/``loader`` default to 96×64, batch 8
(quick: 64×64, batch 2) on a CPU and 288×192, batch 16 on CUDA (``--batch``: its first value). Quick CPU runs use
one torch thread unless ``--threads`` says otherwise. The store holds a few dozen images; the train split's rows
cycle over them (shuffled, and augmented afresh every time), so no large data set is generated.
"""
from __future__ import annotations

import contextlib
import gc
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchlib import Row, bench, option

ROUNDS = 3
CPU_ROUNDS = 7
#: The paper's iMaterialist training split (section 3.4): an epoch's images for the time estimate.
EPOCH_IMAGES = 30_429
SEED = 0
LR, WD = 1e-3, 1e-3
#: Images generated for a store; the train rows cycle over all but the last VALID of them.
STORE_IMAGES, VALID = 40, 8


# --- options --------------------------------------------------------------------------------
def _device() -> torch.device:
    name = str(option("device", "cpu"))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: CUDA is not available here")
    return torch.device(name)


@contextlib.contextmanager
def _threads(quick: bool, device: torch.device):
    """torch's CPU threads for one bench: ``--threads``, else 1 for a quick CPU run, else torch's default.

    On a small shared machine two busy OpenMP threads per process oversubscribe the cores and a step gets
    several times slower; a smoke run should not depend on that. Restored afterwards."""
    before = torch.get_num_threads()
    wanted = option("threads", 1 if quick and device.type == "cpu" else None)
    if wanted:
        torch.set_num_threads(int(wanted))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- data -----------------------------------------------------------------------------------
class _BenchData:
    """The part of :class:`clothparse.datasets.prepare.Prepared` that ``make_dataloaders`` reads: ``store`` and
    ``indices``.

    Valid = the store's last ``VALID`` rows; train = its other rows, repeated in order up to ``n_train`` rows."""

    def __init__(self, store, n_train: int):
        n = len(store)
        if n <= VALID:
            raise RuntimeError(f"bench store has only {n} images")
        self.store = store
        self._rows = {"train": np.resize(np.arange(n - VALID), n_train), "valid": np.arange(n - VALID, n)}

    def indices(self, split: str) -> np.ndarray:
        return self._rows[split]


def _store(tmp: Path, size: tuple[int, int]):
    """A real store at ``size`` built from synthetic JPEGs + RLE annotations written at that size."""
    from clothparse.datasets.imaterialist import IMaterialist
    from clothparse.datasets.store import build_store
    from clothparse.datasets.synthetic import generate

    h, w = size
    root = generate(tmp / f"synthetic-{h}x{w}", n_images=STORE_IMAGES, height=h, width=w, seed=SEED, progress=False)
    return build_store(IMaterialist(root), tmp / "store", size=size, workers=0, progress=False)


def _dataloaders(store, batch: int, n_batches: int, device: torch.device):
    """clothparse's fastai DataLoaders (augmented train split) with at least ``n_batches`` train batches."""
    from clothparse.training.train import make_dataloaders

    return make_dataloaders(_BenchData(store, n_batches * batch), batch_size=batch, device=str(device),
                            augment=True, num_workers=0)


def _collect(dl, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches of a fastai DataLoader as plain tensors on its device (the bare loop's input)."""
    out = []
    for x, y in dl:
        out.append((x.as_subclass(torch.Tensor).detach().clone(), y.as_subclass(torch.Tensor).detach().clone()))
        if len(out) == n:
            return out
    raise RuntimeError(f"the DataLoader gave {len(out)} batches, fewer than {n}")


# --- the two training loops -----------------------------------------------------------------
def _clothparse_side(model_name: str, size, dls, amp: bool, **levers):
    """A Learner exactly as clothparse.training.train.train builds it (progress bar and logger off, as with
    progress=False);
    ``levers``: ``amp_dtype`` / ``channels_last`` as the profile's ``train`` keys set them."""
    from clothparse.models import build_model
    from clothparse.models.losses import CompoundLoss
    from clothparse.training.train import build_learner

    torch.manual_seed(SEED)
    net = build_model(model_name, input_size=size)
    learn = build_learner(net, dls, CompoundLoss(), lr=LR, wd=WD, amp=amp, **levers)
    learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
    learn.logger = lambda *args, **kwargs: None
    return learn


def _timer(n: int, device: torch.device):
    """A fastai callback: timestamps at the end of training batches 0 and n (synchronised there only, so the
    steps in between run as in training), then stops the fit."""
    from fastai.callback.core import Callback, CancelFitException

    class StepTimer(Callback):
        order = 99  # after every other callback's after_batch

        def before_fit(self):
            self.batches, self.stamps, self.skipped = 0, [], 0

        def after_cancel_step(self):  # fp16: the GradScaler found inf/NaN gradients and skipped the step
            if self.training and self.batches > 0:
                self.skipped += 1

        def after_batch(self):
            if not self.training:
                return
            if self.batches in (0, n):
                _sync(device)
                self.stamps.append((time.perf_counter(), time.process_time()))
            self.batches += 1
            if self.batches > n:
                raise CancelFitException()

    return StepTimer()


def _clothparse_rate(learn, n: int, batch: int, device: torch.device) -> tuple[float, float, int]:
    """images/s of batches 1..n of one ``fit_one_cycle`` epoch (the loop clothparse.training.train runs; n=0:
    warm-up): per
    wall-clock second and per second of this process's CPU time; and how many of those n optimizer steps fp16's
    GradScaler skipped (fastai starts a new scaler every fit)."""
    timer = _timer(n, device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available.*")  # fp16 on a CPU: AMP disables itself
        learn.fit_one_cycle(1, lr_max=LR, wd=WD, cbs=[timer])
    if timer.batches != n + 1:
        raise RuntimeError(f"the fit ran {timer.batches} training batches, expected {n + 1}")
    if not n:
        return float("nan"), float("nan"), timer.skipped
    (w0, c0), (w1, c1) = timer.stamps
    return n * batch / (w1 - w0), n * batch / max(c1 - c0, 1e-9), timer.skipped


def _no_decay(model: torch.nn.Module) -> set[int]:
    """ids of the parameters fastai exempts from weight decay (``wd_bn_bias=False``): norm layers and biases."""
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
    ids = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, norms) or name == "bias":
                ids.add(id(p))
    return ids


class _BareLoop:
    """Plain PyTorch: the same architecture and seed, AdamW with fastai's hyper-parameters, optional AMP."""

    def __init__(self, model_name: str, size, device: torch.device, amp: bool):
        from clothparse.models import build_model
        from clothparse.models.losses import CompoundLoss

        torch.manual_seed(SEED)
        self.model = build_model(model_name, input_size=size).to(device).train()
        skip = _no_decay(self.model)
        params = list(self.model.parameters())
        self.opt = torch.optim.AdamW([{"params": [p for p in params if id(p) not in skip], "weight_decay": WD},
                                      {"params": [p for p in params if id(p) in skip], "weight_decay": 0.0}],
                                     lr=LR, betas=(0.9, 0.99), eps=1e-5)
        self.loss_fn = CompoundLoss()
        self.device, self.amp = device, amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.skipped = 0  # optimizer steps the GradScaler skipped (inf/NaN gradients)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        if self.amp:
            with torch.autocast(self.device.type, dtype=torch.float16):
                loss = self.loss_fn(self.model(x), y)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            scale = self.scaler.get_scale()
            self.scaler.update()
            self.skipped += self.scaler.get_scale() < scale  # the scale drops exactly when the step was skipped
        else:
            self.loss_fn(self.model(x), y).backward()
            self.opt.step()

    def rate(self, batches) -> float:
        """images/s over ``batches`` (device synchronised before and after); per CPU second in ``cpu_rate``."""
        _sync(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for x, y in batches:
            self.step(x, y)
        _sync(self.device)
        images = sum(len(x) for x, _ in batches)
        self.cpu_rate = images / max(time.process_time() - c0, 1e-9)
        return images / (time.perf_counter() - t0)


def _optimizer_ms(opt, n: int, device: torch.device) -> float:
    """Milliseconds per ``opt.step()`` alone (on the gradients left by the last training step), after one untimed
    step (a new optimizer allocates its state then). Gradients a ``zero_grad(set_to_none=True)`` left as None are
    filled with small random values first — a step over None gradients does nothing and would time nothing."""
    g = torch.Generator(device=device).manual_seed(0)
    for group in opt.param_groups:
        for p in group["params"]:
            if p.requires_grad and p.grad is None:
                p.grad = 1e-3 * torch.randn(p.shape, generator=g, device=device, dtype=p.dtype)
    opt.step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        opt.step()
    _sync(device)
    return 1e3 * (time.perf_counter() - t0) / n


def _fused_adamw(bare: _BareLoop) -> torch.optim.Optimizer:
    """``bare``'s AdamW (same groups and hyper-parameters) as torch's fused implementation (one kernel per step)."""
    return torch.optim.AdamW([{k: v for k, v in g.items() if k in ("params", "weight_decay")}
                              for g in bare.opt.param_groups], lr=LR, betas=(0.9, 0.99), eps=1e-5, fused=True)


def _compare(model_name: str, size, batch: int, k: int, device: torch.device, store, fp16: bool,
             rounds: int | None = None, opt_steps: int = 0) -> dict:
    """clothparse vs bare, alternately: ``rounds`` × (clothparse k batches, bare k batches) after a warm-up of both.

    ``opt_steps`` > 0: afterwards also time each side's optimizer step alone (clothparse.training.optim.adam —
    fastai's Adam on torch's
    multi-tensor kernels — vs torch's AdamW), the usual suspect when clothparse / bare is low at small batches."""
    dls = _dataloaders(store, batch, k + 1, device)
    learn = _clothparse_side(model_name, size, dls, fp16)
    bare = _BareLoop(model_name, size, device, amp=fp16)
    batches = _collect(dls.train, k)
    _clothparse_rate(learn, 0, batch, device)  # warm-up (one batch): optimizer state, allocator, kernels
    bare.rate(batches[:1])
    bare.skipped = 0
    ours, theirs, cpu_ratios, skipped = [], [], [], 0
    for i in range(int(option("rounds", rounds or ROUNDS))):
        # every other round runs the bare side first, so a drift of the machine's speed (another process
        # starting, the clock settling) favours neither side
        if i % 2:
            theirs.append(bare.rate(batches))
        rate, cpu_rate, n_skipped = _clothparse_rate(learn, k, batch, device)
        ours.append(rate)
        skipped += n_skipped
        if not i % 2:
            theirs.append(bare.rate(batches))
        cpu_ratios.append(cpu_rate / bare.cpu_rate)
    ratios = [a / b for a, b in zip(ours, theirs)]
    return {"clothparse": statistics.median(ours), "bare": statistics.median(theirs), "ours": ours, "theirs": theirs,
            "ratios": ratios, "ratio": statistics.median(ratios), "cpu_ratio": statistics.median(cpu_ratios),
            "skipped": (skipped, bare.skipped), "steps": k * len(ours),
            "opt_ms": (_optimizer_ms(learn.opt, opt_steps, device), _optimizer_ms(bare.opt, opt_steps, device),
                       _optimizer_ms(_fused_adamw(bare), opt_steps, device)) if opt_steps else None}


def _where(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({threads} thread{'s' * (threads != 1)})"


def _rounds(rates) -> str:
    return "rounds " + " ".join(f"{r:.3g}" for r in rates)


def _train_setup(quick: bool, device: torch.device):
    """model, size, batch, k: on a CPU 96×64 batch 8 (quick: 64×64 batch 2), on CUDA 288×192 batch 16."""
    cpu = device.type == "cpu"
    model = option("model", ("unet",))[0]
    size = tuple(option("size", ((64, 64) if quick else (96, 64)) if cpu else (288, 192)))
    batch = option("batch", ((2,) if quick else (8,)) if cpu else (16,))[0]
    k = option("iters", (2 if quick else 4) if cpu else (5 if quick else 20))
    return model, size, batch, k


@bench("train", "clothparse's fastai training step vs a bare PyTorch loop (same model, batches, loss, AdamW)")
def train_step(quick: bool) -> list[Row]:
    device = _device()
    model, size, batch, k = _train_setup(quick, device)
    with _threads(quick, device) as threads, tempfile.TemporaryDirectory(prefix="clothparse-bench-") as tmp:
        # a full CPU run takes 7 rounds: on a shared 2-core machine single rounds' ratios spread over ±0.05
        r = _compare(model, size, batch, k, device, _store(Path(tmp), size), fp16=False,
                     rounds=ROUNDS if quick or device.type != "cpu" else CPU_ROUNDS)
    what = f"{model} {size[0]}×{size[1]} batch {batch} fp32 on {_where(device, threads)}, {k} batches/round"
    return [Row(f"clothparse (fastai Learner): {what}", r["clothparse"], "images/s",
                _rounds(r["ours"]) + "; fastai loader + augmentation included"),
            Row(f"bare PyTorch loop (AdamW): {what}", r["bare"], "images/s",
                _rounds(r["theirs"]) + "; batches pre-collected from the same loader"),
            Row("clothparse / bare", r["ratio"], "×", f"median of the {len(r['ours'])} rounds' ratios (each round "
                f"a back-to-back pair, alternating which side goes first; "
                f"range {min(r['ratios']):.3g}–{max(r['ratios']):.3g}); "
                f"ratio of the medians {r['clothparse'] / r['bare']:.3g}"
                + (f"; per CPU-second of this process {r['cpu_ratio']:.3g}" if device.type == "cpu" else "")
                + "; goal ≥ 0.9")]


@bench("loader", "the fastai train DataLoader (store → augmented device batches) vs the model's training step")
def loader_rate(quick: bool) -> list[Row]:
    device = _device()
    model, size, batch, k = _train_setup(quick, device)
    n_load = max(4 * k, 8)
    with _threads(quick, device) as threads, tempfile.TemporaryDirectory(prefix="clothparse-bench-") as tmp:
        store = _store(Path(tmp), size)
        dls = _dataloaders(store, batch, n_load + 1, device)
        bare = _BareLoop(model, size, device, amp=False)
        batches = _collect(dls.train, k)
        bare.rate(batches[:1])  # warm-up
        loads, steps = [], []
        for _ in range(int(option("rounds", ROUNDS))):
            stamps = []
            for _x, _y in dls.train:  # a fresh epoch: shuffle, collate, to device, augment, normalise
                _sync(device)
                stamps.append(time.perf_counter())
                if len(stamps) > n_load:
                    break
            loads.append(n_load * batch / (stamps[-1] - stamps[0]))
            steps.append(bare.rate(batches))
    load, step = statistics.median(loads), statistics.median(steps)
    what = f"{size[0]}×{size[1]} batch {batch} on {_where(device, threads)}"
    return [Row(f"fastai train DataLoader, augmented: {what}", load, "images/s",
                _rounds(loads) + f"; {n_load} batches/round, num_workers=0"),
            Row(f"model training step (bare, {model} fp32): {what}", step, "images/s", _rounds(steps)),
            Row("loader / model", statistics.median(a / b for a, b in zip(loads, steps)), "×",
                "median of per-round ratios; ≫ 1: the loader is not the bottleneck")]


def _levers_row(model: str, size, batch: int, k: int, device: torch.device, store, bare_rate: float,
                what: str) -> Row:
    """clothparse with the profile's GPU levers on (``train.amp_dtype: bf16``, ``train.channels_last: true``)."""
    levers = {"amp_dtype": "bf16", "channels_last": True}
    dls = _dataloaders(store, batch, k + 1, device)
    learn = _clothparse_side(model, size, dls, True, **levers)
    _clothparse_rate(learn, 0, batch, device)  # warm-up
    rates = [_clothparse_rate(learn, k, batch, device)[0] for _ in range(ROUNDS)]
    del learn
    gc.collect()
    rate = statistics.median(rates)
    return Row(f"{what}: clothparse, train.amp_dtype=bf16 + channels_last", rate, "images/s",
               f"{_rounds(rates)}; {rate / bare_rate:.3g}× the bare fp16 loop")


@bench("gpu_train", "unet & extended_unet with AMP: clothparse (fastai, fp16) vs a bare AMP loop, epoch estimate")
def gpu_train(quick: bool) -> list[Row]:
    device = _device()
    cpu = device.type == "cpu"
    models = option("model", ("unet", "extended_unet"))
    size = tuple(option("size", ((64, 64) if quick else (96, 64)) if cpu else (288, 192)))
    batches = option("batch", ((2, 4) if quick else (4, 8)) if cpu else (16, 64))
    k = option("iters", (1 if quick else 2) if cpu else (4 if quick else 15))
    rounds = 2 if cpu and quick else ROUNDS
    precision = "fp32: AMP is CUDA-only" if cpu else "fp16 AMP"
    rows = []
    with _threads(quick, device) as threads, tempfile.TemporaryDirectory(prefix="clothparse-bench-") as tmp:
        store = _store(Path(tmp), size)
        for model in models:
            for batch in batches:
                if not cpu:
                    torch.cuda.reset_peak_memory_stats(device)
                first = batch == batches[0]
                r = _compare(model, size, batch, k, device, store, fp16=True, rounds=rounds,
                             opt_steps=(1 if cpu else 20) if first else 0)
                peak = "" if cpu else f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB (both models)"
                gc.collect()  # the Learner and its callbacks reference each other: free both models now
                if not cpu:
                    torch.cuda.empty_cache()
                what = f"{model} {size[0]}×{size[1]} batch {batch}"
                rows += [Row(f"{what}: clothparse (fastai, fp16=True)", r["clothparse"], "images/s",
                             f"{_rounds(r['ours'])}; {precision}, {k} batches/round"
                             + ("" if cpu else f"; {r['skipped'][0]}/{r['steps']} steps skipped by GradScaler")),
                         Row(f"{what}: bare AMP loop", r["bare"], "images/s", _rounds(r["theirs"])
                             + ("; fp32 on a CPU" if cpu else f"; {r['skipped'][1]}/{r['steps']} steps skipped")),
                         Row(f"{what}: clothparse / bare", r["ratio"], "×",
                             f"median of per-round ratios; on {_where(device, threads)}{peak}"),
                         Row(f"{what}: epoch of {EPOCH_IMAGES:,} images, clothparse",
                             EPOCH_IMAGES / r["clothparse"] / 60, "min",
                             f"bare: {EPOCH_IMAGES / r['bare'] / 60:.3g} min")]
                if not cpu and first:
                    rows.append(_levers_row(model, size, batch, k, device, store, r["bare"], what))
                if r["opt_ms"]:
                    rows.append(Row(f"{model}: optimizer step alone, clothparse.training.optim.adam", r["opt_ms"][0],
                                    "ms",
                                    f"torch AdamW default {r['opt_ms'][1]:.3g} ms, fused=True {r['opt_ms'][2]:.3g} ms"))
    return rows


# --- whole training epochs: each side with its own loader and augmentation --------------------
class _PlainStoreRows(torch.utils.data.Dataset):
    """Store rows as plain ``(uint8 3×H×W, int64 H×W)`` tensors: the bare side's dataset, no fastai types."""

    def __init__(self, store, rows):
        self.store, self.rows = store, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        j = int(self.rows[i])
        return (torch.from_numpy(np.array(self.store.images[j])).permute(2, 0, 1),
                torch.from_numpy(self.store.masks[j].astype(np.int64)))


class _BareEpoch(_BareLoop):
    """The bare loop fed by its own ``torch.utils.data.DataLoader`` and :func:`bare_augment`, normalised with
    the ImageNet statistics: a training epoch with the same work as clothparse's, written without fastai."""

    def __init__(self, model_name: str, size, device: torch.device, store, rows, batch: int):
        super().__init__(model_name, size, device, amp=False)
        from clothparse.images import IMAGENET_STATS

        self.loader = torch.utils.data.DataLoader(_PlainStoreRows(store, rows), batch_size=batch, shuffle=True,
                                                  drop_last=True, num_workers=0)
        mean, std = (torch.tensor(s, device=device).view(1, 3, 1, 1) for s in IMAGENET_STATS)
        self.mean, self.std = mean, std

    def epoch_rate(self, n: int) -> tuple[float, float]:
        """images/s (wall clock, CPU time) of batches 1..n of a fresh epoch, loading and augmenting included."""
        from clothparse.training.augment import augment_batch  # plain tensors in and out, no fastai

        stamps = []
        for i, (x, y) in enumerate(self.loader):
            x, y = x.to(self.device).float() / 255, y.to(self.device)
            x, y = augment_batch(x, y)
            self.step((x - self.mean) / self.std, y)
            if i in (0, n):
                _sync(self.device)
                stamps.append((time.perf_counter(), time.process_time()))
            if i == n:
                break
        if len(stamps) != 2:
            raise RuntimeError(f"the bare loader gave fewer than {n + 1} batches")
        (w0, c0), (w1, c1) = stamps
        images = n * self.loader.batch_size
        return images / (w1 - w0), images / max(c1 - c0, 1e-9)


@bench("train_epoch", "training epochs, each side with its own loader and the same augmentation: clothparse "
       "(fastai Learner) vs a bare PyTorch loop; and clothparse with fastai's own aug_transforms")
def train_epoch(quick: bool) -> list[Row]:
    from clothparse.training.augment import fastai_transforms
    from clothparse.training.train import make_dataloaders

    device = _device()
    model, size, batch, _ = _train_setup(quick, device)
    k = option("iters", (3 if quick else 6) if device.type == "cpu" else 40)
    rounds = int(option("rounds", 2 if quick else 3))
    with _threads(quick, device) as threads, tempfile.TemporaryDirectory(prefix="clothparse-bench-") as tmp:
        store = _store(Path(tmp), size)
        data = _BenchData(store, (k + 1) * batch)
        sides = {"ours": _clothparse_side(model, size, _dataloaders(store, batch, k + 1, device), amp=False),
                 "fastai_aug": _clothparse_side(model, size, make_dataloaders(
                     data, batch_size=batch, device=str(device), batch_tfms=fastai_transforms()), amp=False)}
        bare = _BareEpoch(model, size, device, store, data.indices("train"), batch)
        for learn in sides.values():  # warm-up of every side
            _clothparse_rate(learn, 0, batch, device)
        bare.epoch_rate(1)
        rates = {"ours": [], "fastai_aug": [], "bare": []}
        for i in range(rounds):
            order = ["ours", "fastai_aug", "bare"]
            for name in order[i % 3:] + order[:i % 3]:  # each side goes first in turn
                rates[name].append(bare.epoch_rate(k) if name == "bare" else
                                   _clothparse_rate(sides[name], k, batch, device)[:2])
    wall = {n: [r[0] for r in v] for n, v in rates.items()}
    ratio = [a / b for a, b in zip(wall["ours"], wall["bare"])]
    cpu_ratio = statistics.median(a[1] / b[1] for a, b in zip(rates["ours"], rates["bare"]))
    gain = [a / b for a, b in zip(wall["ours"], wall["fastai_aug"])]
    what = f"{model} {size[0]}×{size[1]} batch {batch} fp32 on {_where(device, threads)}, {k} batches/round"
    return [Row(f"clothparse epoch (fastai loader, FlipRotateLighting): {what}", statistics.median(wall["ours"]),
                "images/s", _rounds(wall["ours"])),
            Row(f"clothparse epoch with fastai's aug_transforms instead: {what}",
                statistics.median(wall["fastai_aug"]), "images/s", _rounds(wall["fastai_aug"])),
            Row(f"bare epoch (torch DataLoader + the same augmentation, plain tensors): {what}",
                statistics.median(wall["bare"]), "images/s", _rounds(wall["bare"])),
            Row("clothparse / bare, whole epochs", statistics.median(ratio), "×",
                f"median of the {rounds} rounds' ratios (range {min(ratio):.3g}–{max(ratio):.3g}); per CPU-second "
                f"of this process {cpu_ratio:.3g}; goal ≥ 0.95"),
            Row("FlipRotateLighting / fastai aug_transforms, whole epochs", statistics.median(gain), "×",
                f"range {min(gain):.3g}–{max(gain):.3g}: what clothparse's own augmentation saves")]


# --- the levers of GPU training speed, one at a time and together -----------------------------
#: name → (channels_last, autocast dtype or None, fused AdamW, torch.compile)
LEVERS = {"fp32 (baseline)": (False, None, False, False),
          "channels_last": (True, None, False, False),
          "bf16 autocast": (False, torch.bfloat16, False, False),
          "fp16 autocast + GradScaler": (False, torch.float16, False, False),
          "fused AdamW": (False, None, True, False),
          "torch.compile": (False, None, False, True),
          "all: channels_last + bf16 + fused + compile": (True, torch.bfloat16, True, True)}


class _LeverLoop(_BareLoop):
    """The bare loop with some of :data:`LEVERS` switched on."""

    def __init__(self, model_name: str, size, device: torch.device, channels_last: bool, dtype, fused: bool,
                 compiled: bool):
        super().__init__(model_name, size, device, amp=dtype is torch.float16)
        self.channels_last, self.dtype = channels_last, dtype
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if fused:
            self.opt = _fused_adamw(self)
        self.forward = torch.compile(self.model) if compiled else self.model

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            loss = self.loss_fn(self.forward(x), y)
        if self.dtype is torch.float16:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()


@bench("gpu_levers", "images/s of the bare training loop with each speed lever alone and all together "
       "(channels-last, bf16/fp16 autocast, fused AdamW, torch.compile)")
def gpu_levers(quick: bool) -> list[Row]:
    device = _device()
    cpu = device.type == "cpu"
    model = option("model", ("extended_unet",))[0]
    size = tuple(option("size", ((64, 64) if quick else (96, 64)) if cpu else (288, 192)))
    batch = option("batch", ((2,) if quick else (4,)) if cpu else (16,))[0]
    k = option("iters", (1 if quick else 3) if cpu else 30)
    names = [n for n in LEVERS if not (cpu and ("compile" in n or "fp16" in n or "fused" in n))]
    rows = []
    with _threads(quick, device) as threads, tempfile.TemporaryDirectory(prefix="clothparse-bench-") as tmp:
        store = _store(Path(tmp), size)
        batches = _collect(_dataloaders(store, batch, k, device).train, k)
        base = None
        for name in names:
            loop = _LeverLoop(model, size, device, *LEVERS[name])
            loop.rate(batches[:1] * (3 if LEVERS[name][3] else 1))  # warm-up (compile: its graphs)
            rate = statistics.median(loop.rate(batches) for _ in range(int(option("rounds", 1 if cpu else 3))))
            base = base or rate
            rows.append(Row(f"{model} {size[0]}×{size[1]} batch {batch}, bare loop: {name}", rate, "images/s",
                            f"{rate / base:.3g}× the fp32 baseline; on {_where(device, threads)}"))
            del loop
            gc.collect()
    if cpu:
        rows.append(Row("levers not run on a CPU", float("nan"), "", "fp16/GradScaler, fused AdamW and "
                        "torch.compile are for the GPU run (bench/gpu_check.sh)"))
    return rows
