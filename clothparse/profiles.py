"""Profiles (``params/*.yaml``): which data, size, models and schedule a run of the whole pipeline uses.

:func:`load_profile` reads a YAML file (or a mapping), applies dotted overrides
(``{"train.epochs_unfrozen": 2}``, the CLI's ``--set train.epochs_unfrozen=2``) and returns a frozen,
typed :class:`Profile`. Every key is checked when the profile is loaded: an unknown key, a value of the
wrong type (``augment: "false"``, ``batch_size: 8.9``), an unknown data kind or a malformed size is a
:class:`ProfileError` naming the key and what it expects, before any data is prepared.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from clothparse.models.encoders import ENCODER_NAMES
from clothparse.models.factory import MODEL_NAMES

#: Keys that were renamed: the old spelling is refused with the new name (a silently ignored key would train
#: with the default instead).
RENAMED_KEYS = {"train.fp16": "train.amp"}

#: The repository root (profiles, notebooks and the book live beside the package in a checkout).
REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = REPO_ROOT / "params"

DataKind = Literal["synthetic", "imaterialist", "ccp"]
Detector = Literal["persons_csv", "maskrcnn"]


class ProfileError(ValueError):
    """A profile that cannot be used as written: the message names the profile, the key and the problem."""


@dataclass(frozen=True)
class SyntheticConfig:
    """The embedded generator's parameters (``data.kind: synthetic``)."""

    n_images: int = 600
    height: int = 288
    width: int = 192
    seed: int = 0
    second_person_share: float = 0.25


@dataclass(frozen=True)
class DataConfig:
    kind: DataKind = "synthetic"
    root: str | None = None          # dataset folder (imaterialist/ccp); the variable named by root_env wins
    root_env: str | None = None      # e.g. CLOTHPARSE_CCP_ROOT
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    refine: bool = True              # train on the refined dataset (paper, section 4.1)
    detector: Detector = "persons_csv"


@dataclass(frozen=True)
class SplitConfig:
    fractions: tuple[float, float, float] = (0.70, 0.09, 0.21)   # train, valid, test
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    epochs_frozen: int = 10
    epochs_unfrozen: int = 10
    lr_max: float = 1e-4
    wd: float = 1e-3
    seed: int = 0
    # Several training seeds (`seeds: [0, 1, 2]`): each is a run of its own (train.seed set to it) and the
    # tables show their mean and spread. () = the one run of `seed`. Not part of a run's id.
    seeds: tuple[int, ...] = ()
    # Per-model seed lists (`model_seeds: {unet: [0, 1, 2]}`) where models need different numbers of runs: the
    # pairs a verdict rests on get their training variance measured, the rest of the book keeps its time. A
    # model not named trains `seeds` (else `seed`). Not part of a run's id, for the reason `seeds` is not.
    model_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # Mixed precision (autocast) — auto: on a GPU only; true on a CPU autocasts in bf16 (see
    # train.resolve_amp_dtype)
    amp: Union[Literal["auto"], bool] = "auto"
    # Mixed precision's half type where amp is on: "fp16" (with a loss scaler), "bf16" (fp32's range, no scaler;
    # GPUs from Ampere on), "auto" (bf16 where the GPU has it). And the channels-last memory format for the model
    # (tensor-core convolutions prefer it). Both are speed levers for a GPU; `make bench` (gpu_levers, gpu_train)
    # measures them. The defaults are the settings whose training numbers are known: a lever that pays on one GPU
    # may not on another, so it is switched on per profile.
    amp_dtype: Literal["fp16", "bf16", "auto"] = "fp16"
    channels_last: bool = False
    num_workers: int = 0
    augment: bool = True
    # The per-epoch resume checkpoint (model + Adam's moments, ~3x model.safetensors) is deleted once the
    # run is complete; keep it to continue training by hand. It does not change the model, so not the run id.
    keep_checkpoint: bool = False


@dataclass(frozen=True)
class LossConfig:
    """The weights of the compound loss's terms (:class:`~clothparse.models.losses.CompoundLoss`). The
    defaults are the paper's, chosen so the three terms contribute about evenly on iMaterialist; on other data
    one term may dominate, and rebalancing it is an ablation of its own (a run id of its own)."""

    seg: float = 1.0     # weighted cross-entropy of the segmentation
    cls: float = 0.5     # ClassBranch BCE
    box: float = 75.0    # BBBranch smooth L1


@dataclass(frozen=True)
class EvaluateConfig:
    batch_size: int = 64
    qualitative_sample: int = 1000   # test images whose predictions are kept for the figures


@dataclass(frozen=True)
class Profile:
    """One pipeline configuration. Build it with :func:`load_profile`; change it with :meth:`replace`."""

    name: str
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    size: tuple[int, int] = (288, 192)            # H×W of the store and the network input
    split: SplitConfig = field(default_factory=SplitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    models: tuple[str, ...] = ("unet", "extended_unet")
    table1_models: tuple[str, ...] = ("unet",)    # trained on the base (unrefined) data too, for Table 1
    encoder_name: str = "resnet34"                # resnet34 (the paper's) | tf_efficientnet_lite0 | …lite2 | …
    encoder_weights: str | None = None            # None | "imagenet" | path to a state dict of the encoder
    device: str = "auto"                          # auto | cpu | cuda | cuda:N
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    work_dir: str = "work"                        # generated data and stores: <work_dir>/<profile>/...
    runs_dir: str = "runs"                        # run folders: <runs_dir>/<profile>/<run-id>/

    # --- what is derived from the keys, said once ---------------------------------------------
    @property
    def refines(self) -> bool:
        """The models train on the refined data (and Table 1 compares base with refined)."""
        return self.data.refine

    @property
    def main_variant(self) -> str:
        """The data variant the profile's models train on."""
        return "refined" if self.refines else "base"

    @property
    def work_path(self) -> Path:
        return under_repo(self.work_dir) / self.name

    @property
    def runs_path(self) -> Path:
        return under_repo(self.runs_dir) / self.name

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds: ``train.seeds`` where given, else the one ``train.seed``."""
        return self.train.seeds or (self.train.seed,)

    def seeds_for(self, model: str) -> tuple[int, ...]:
        """The training seeds of one model: its ``train.model_seeds`` entry, else :attr:`seeds`."""
        return self.train.model_seeds.get(model) or self.seeds

    def default_seed(self, model: str) -> int:
        """The seed a model trains when none is asked for: ``train.seed`` where it is one of the model's seeds
        (the run a one-seed profile makes), else the model's first seed."""
        seeds = self.seeds_for(model)
        return self.train.seed if self.train.seed in seeds else seeds[0]

    def seeds_text(self) -> str:
        """The training seeds in words: ``seed 0``, ``seeds 0, 1, 2`` or, with per-model lists, each list and
        the models that train it."""
        by_seeds: dict[tuple[int, ...], list[str]] = {}
        for model in self.models:
            by_seeds.setdefault(self.seeds_for(model), []).append(model)

        def words(seeds):
            return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        if len(by_seeds) <= 1:
            return words(next(iter(by_seeds), self.seeds))
        return "; ".join(f"{words(seeds)} ({', '.join(models)})" for seeds, models in by_seeds.items())

    def only_seed(self, seed: int) -> Profile:
        """The same profile with one training seed for every model: ``seed``."""
        one = self.with_seed(seed)
        return dataclasses.replace(one, train=dataclasses.replace(one.train, seeds=(), model_seeds={}))

    def with_seed(self, seed: int) -> Profile:
        """The same profile training with ``seed`` (``train.seed``; ``train.seeds`` is left as it is)."""
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ProfileError(f"profile {self.name!r}: a seed is an integer, got {seed!r}")
        return dataclasses.replace(self, train=dataclasses.replace(self.train, seed=seed))

    def to_dict(self) -> dict:
        """Plain JSON-able mapping (lists for tuples) that :func:`load_profile` reads back. ``train.seeds``,
        ``train.model_seeds`` and ``loss`` appear only where given (not the defaults): the plain form of a
        profile that does not use them — a book step's cache key, a run's recorded profile — stays as it was
        before they existed, and :func:`load_profile` refuses an empty seed list."""
        plain = _plain(dataclasses.asdict(self))
        if not self.train.seeds:
            del plain["train"]["seeds"]
        if not self.train.model_seeds:
            del plain["train"]["model_seeds"]
        if self.loss == LossConfig():
            del plain["loss"]
        return plain

    def replace(self, overrides: dict[str, Any]) -> Profile:
        """A copy with dotted-key overrides (``{"train.keep_checkpoint": True}``), checked like a file."""
        return load_profile(self.to_dict(), overrides)


def under_repo(path: str | os.PathLike) -> Path:
    """A profile's path: ``~`` expanded, and relative paths taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --- loading ---------------------------------------------------------------------------------------
def profile_path(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = PARAMS_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"no profile {str(name_or_path)!r}: not a YAML file and not one of {known} in {PARAMS_DIR}")


def load_profile(name_or_path: str | os.PathLike | dict | Profile, overrides: dict[str, Any] | None = None) -> Profile:
    """The typed profile; ``overrides`` use dotted keys (``"train.seed"``). Raises :class:`ProfileError`."""
    if isinstance(name_or_path, Profile):
        if not overrides:
            return name_or_path
        name_or_path = name_or_path.to_dict()
    raw, source = _read_raw(name_or_path)
    _refuse_renamed(raw, source)
    for dotted, value in (overrides or {}).items():
        if dotted in RENAMED_KEYS:
            raise ProfileError(f"{source}: --set {dotted}: {dotted} was renamed {RENAMED_KEYS[dotted]} "
                               "(same values: true, false or auto)")
        _set_dotted(raw, dotted, value, source)
    if isinstance(raw.get("train"), dict) and "seeds" in raw["train"] and raw["train"]["seeds"] in ([], ()):
        raise ProfileError(f"{source}: train.seeds: an empty list; give at least one seed or leave the key out")
    profile = _typed(Profile, raw, "", source)
    _check(profile, source)
    _check_seeds_and_loss(profile, source)
    root_env = profile.data.root_env
    if root_env and os.environ.get(root_env):
        profile = dataclasses.replace(profile, data=dataclasses.replace(profile.data, root=os.environ[root_env]))
    return profile


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["train.epochs_unfrozen=1", "device=cpu"]`` → ``{"train.epochs_unfrozen": 1, "device": "cpu"}``;
    values are read as YAML, so numbers, booleans and lists keep their type."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ProfileError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set train.epochs_unfrozen=1")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ProfileError(f"--set {pair!r}: the value is not valid YAML ({err})") from err
    return out


def _read_raw(name_or_path) -> tuple[dict, str]:
    if isinstance(name_or_path, dict):
        return _plain(name_or_path), f"profile {name_or_path.get('name')!r}"
    path = profile_path(name_or_path)
    source = f"profile {path.stem!r} ({path})"
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML: {err}") from err
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: expected a mapping of keys at the top, got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    return raw, source


def _refuse_renamed(raw: dict, source: str) -> None:
    for old, new in RENAMED_KEYS.items():
        *parents, leaf = old.split(".")
        node = raw
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            raise ProfileError(f"{source}: {old} was renamed {new} (same values: true, false or auto)")


def _set_dotted(raw: dict, dotted: str, value: Any, source: str) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    hints: Any = Profile
    for part in parents:
        hints = _field_types(hints, part, dotted, source)
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ProfileError(f"{source}: cannot set {dotted!r}: {part!r} is not a mapping")
    if get_origin(hints) is not dict:  # a mapping's entries (train.model_seeds.unet) are checked with their value
        _field_types(hints, leaf, dotted, source)
    node[leaf] = value


def _field_types(cls, name: str, dotted: str, source: str):
    if not dataclasses.is_dataclass(cls):
        raise ProfileError(f"{source}: unknown profile key {dotted!r}")
    hints = get_type_hints(cls)
    if name not in hints:
        raise ProfileError(f"{source}: unknown profile key {dotted!r}; known under it: {sorted(hints)}")
    return hints[name]


def _typed(cls, raw: Any, where: str, source: str):
    """``cls`` built from ``raw`` with every value checked against its annotation."""
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: {where.rstrip('.') or 'profile'}: expected a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ProfileError(f"{source}: unknown profile key {where + unknown[0]!r}; known: {sorted(hints)}")
    values = {k: _value(raw[k], hints[k], where + k, source) for k in raw}
    try:
        return cls(**values)
    except TypeError as err:  # a required key (the name) is missing
        raise ProfileError(f"{source}: {err}") from err


_YAML11_EXPONENT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")
_KIND_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _value(value: Any, tp: Any, key: str, source: str):
    """``value`` checked against the annotation ``tp`` (no silent coercion: ``"false"`` is not a bool)."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _typed(tp, value, key + ".", source)
    if origin in (Union, types.UnionType):
        return _union_value(value, tp, key, source)
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        known = ", ".join(repr(a) for a in get_args(tp))
        raise ProfileError(f"{source}: {key}: unknown value {value!r}; expected one of {known}")
    if origin is tuple:
        return _tuple_value(value, tp, key, source)
    if origin is dict:
        return _dict_value(value, tp, key, source)
    if tp is type(None):
        if value is None:
            return None
    elif tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif tp is float and isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads `3e-3` (no dot) as a string; everyone means the number
    elif tp in (bool, int, str) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ProfileError(f"{source}: {key}: expected {_describe(tp)}, got {value!r} ({type(value).__name__})")


def _union_value(value, tp, key, source):
    for option in get_args(tp):
        try:
            return _value(value, option, key, source)
        except ProfileError:
            continue
    expected = " or ".join(_describe(option) for option in get_args(tp))
    raise ProfileError(f"{source}: {key}: expected {expected}, got {value!r} ({type(value).__name__})")


def _describe(tp) -> str:
    if tp is type(None):
        return "null"
    if get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    return _KIND_WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _tuple_value(value, tp, key, source):
    args = get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise ProfileError(f"{source}: {key}: expected a list, got {value!r} ({type(value).__name__})")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_value(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
    if len(value) != len(args):
        raise ProfileError(f"{source}: {key}: expected a list of {len(args)} values, got {list(value)!r}")
    return tuple(_value(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))


def _dict_value(value, tp, key, source):
    key_type, value_type = get_args(tp)
    if not isinstance(value, dict):
        raise ProfileError(f"{source}: {key}: expected a mapping, got {value!r} ({type(value).__name__})")
    return {_value(k, key_type, f"{key} (a key)", source): _value(v, value_type, f"{key}.{k}", source)
            for k, v in value.items()}


def _check(p: Profile, source: str) -> None:
    """What the types alone do not say."""
    h, w = p.size
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ProfileError(f"{source}: size {h}×{w}: both sides must be positive multiples of 32 "
                           "(the encoders downsample by 32)")
    if not p.name:
        raise ProfileError(f"{source}: a profile needs a name")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", p.device):
        raise ProfileError(f"{source}: device: unknown value {p.device!r}; expected auto, cpu, cuda or cuda:N")

    if p.encoder_name not in ENCODER_NAMES:
        raise ProfileError(f"{source}: encoder_name: unknown encoder {p.encoder_name!r}; known: "
                           f"{', '.join(ENCODER_NAMES)}")

    for key, names in (("models", p.models), ("table1_models", p.table1_models)):
        unknown = [m for m in names if m not in MODEL_NAMES]
        if unknown:
            raise ProfileError(f"{source}: {key}: unknown model {unknown[0]!r}; known: {', '.join(MODEL_NAMES)}")
    if p.data.kind == "ccp" and p.data.refine:
        raise ProfileError(f"{source}: data.refine: CCP photos show one person each and have no iMaterialist "
                           "layout to refine; set data.refine: false")
    if abs(sum(p.split.fractions) - 1.0) > 1e-6 or min(p.split.fractions) < 0:
        raise ProfileError(f"{source}: split.fractions {list(p.split.fractions)} must be ≥ 0 and sum to 1")
    positive = {"train.batch_size": p.train.batch_size, "evaluate.batch_size": p.evaluate.batch_size,
                "data.synthetic.n_images": p.data.synthetic.n_images, "train.lr_max": p.train.lr_max}
    non_negative = {"train.epochs_frozen": p.train.epochs_frozen, "train.epochs_unfrozen": p.train.epochs_unfrozen,
                    "train.num_workers": p.train.num_workers, "train.wd": p.train.wd,
                    "evaluate.qualitative_sample": p.evaluate.qualitative_sample}
    for key, v in {**positive, **non_negative}.items():
        if not math.isfinite(v):  # .nan / .inf in YAML: every comparison below would let NaN through
            raise ProfileError(f"{source}: {key}: must be a finite number, got {v}")
    for key, v in positive.items():
        if v <= 0:
            raise ProfileError(f"{source}: {key}: must be positive, got {v}")
    for key, v in non_negative.items():
        if v < 0:
            raise ProfileError(f"{source}: {key}: must be ≥ 0, got {v}")
    if len(set(p.train.seeds)) != len(p.train.seeds):
        raise ProfileError(f"{source}: train.seeds: {list(p.train.seeds)} repeats a seed; each seed is one run")
    if p.train.epochs_frozen + p.train.epochs_unfrozen == 0:
        raise ProfileError(f"{source}: train: epochs_frozen + epochs_unfrozen is 0; nothing would train")



def _check_seeds_and_loss(p: Profile, source: str) -> None:
    """Per-model seed lists name known models, each list one or more distinct seeds; the loss weights are ≥ 0,
    the segmentation's > 0 (a branch's 0 switches that term off, an ablation; the segmentation cannot go)."""
    for model, seeds in p.train.model_seeds.items():
        key = f"train.model_seeds.{model}"
        if model not in MODEL_NAMES:
            raise ProfileError(f"{source}: train.model_seeds: unknown model {model!r}; known: {', '.join(MODEL_NAMES)}")
        if not seeds:
            raise ProfileError(f"{source}: {key}: an empty list; give at least one seed or leave the model out")
        if len(set(seeds)) != len(seeds):
            raise ProfileError(f"{source}: {key}: {list(seeds)} repeats a seed; each seed is one run")
    for term in ("cls", "box"):
        if getattr(p.loss, term) < 0:
            raise ProfileError(f"{source}: loss.{term}: must be ≥ 0, got {getattr(p.loss, term)}")
    if p.loss.seg <= 0:
        raise ProfileError(f"{source}: loss.seg: must be positive, got {p.loss.seg}")
