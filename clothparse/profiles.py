"""Profiles (``params/*.yaml``): which data, size, models and schedule a run of the whole pipeline uses.

A profile is a plain YAML mapping; :func:`load_profile` fills defaults, applies overrides
(``{"train.epochs_unfrozen": 2}``) and checks the keys, so a typo is an error rather than a silent default.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

#: The repository root (profiles, notebooks and the book live beside the package in a checkout).
REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = REPO_ROOT / "params"

DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "data": {
        "kind": "synthetic",          # synthetic | imaterialist | ccp
        "root": None,                 # dataset folder (imaterialist/ccp); env var data.root_env overrides
        "root_env": None,             # e.g. CLOTHPARSE_CCP_ROOT
        "synthetic": {"n_images": 600, "height": 288, "width": 192, "seed": 0, "second_person_share": 0.25},
        "refine": True,               # train on the refined dataset (paper, section 4.1)
        "detector": "persons_csv",    # persons_csv (synthetic) | maskrcnn
        "limit": None,                # use only the first N images (quick looks)
    },
    "size": [288, 192],               # H×W of the store and the network input
    "split": {"fractions": [0.70, 0.09, 0.21], "seed": 0},
    "train": {
        "batch_size": 16, "epochs_frozen": 10, "epochs_unfrozen": 10, "lr_max": 1e-4, "wd": 1e-3,
        "seed": 0, "fp16": "auto", "num_workers": 0, "augment": True,
        # the per-epoch resume checkpoint (model + Adam moments: ~3x model.safetensors) is deleted once
        # the run is complete; keep it to continue training by hand
        "keep_checkpoint": False,
    },
    "models": ["unet", "extended_unet"],
    "table1_models": ["unet"],        # trained on the base (unrefined) data too, for Table 1
    "encoder_weights": None,          # None | "imagenet" | path to a torchvision ResNet34 state dict
    "device": "auto",                 # auto | cpu | cuda
    "evaluate": {"batch_size": 64, "qualitative_sample": 1000, "keep_predictions": 64},
    "work_dir": "work",               # generated data and stores: <work_dir>/<profile>/...
    "runs_dir": "runs",               # run folders: <runs_dir>/<profile>/<run-id>/
}


def _merge(base: dict, extra: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        where = f"{path}{key}"
        if key not in base:
            raise KeyError(f"unknown profile key {where!r}; known: {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = _merge(base[key], value, where + ".")
        else:
            out[key] = value
    return out


def profile_path(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = PARAMS_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"no profile {str(name_or_path)!r}: not a YAML file and not one of {known} in {PARAMS_DIR}")


def load_profile(name_or_path: str | os.PathLike | dict, overrides: dict[str, Any] | None = None) -> dict:
    """The profile as a dict with defaults filled in; ``overrides`` use dotted keys (``"train.seed"``)."""
    if isinstance(name_or_path, dict):
        raw = copy.deepcopy(name_or_path)
    else:
        path = profile_path(name_or_path)
        raw = yaml.safe_load(path.read_text()) or {}
        raw.setdefault("name", path.stem)
    profile = _merge(DEFAULTS, raw)
    for dotted, value in (overrides or {}).items():
        node = profile
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"unknown profile key {dotted!r}")
        node[leaf] = value
    if not profile["name"]:
        raise ValueError("a profile needs a name")
    h, w = profile["size"]
    if h % 32 or w % 32:
        raise ValueError(f"size {h}×{w}: both sides must be multiples of 32 (ResNet34 downsamples by 32)")
    env = profile["data"].get("root_env")
    if env and os.environ.get(env):
        profile["data"]["root"] = os.environ[env]
    return profile


def work_dir(profile: dict) -> Path:
    return (REPO_ROOT / profile["work_dir"] / profile["name"]).resolve() if not Path(profile["work_dir"]).is_absolute() \
        else Path(profile["work_dir"]) / profile["name"]


def runs_dir(profile: dict) -> Path:
    base = Path(profile["runs_dir"])
    return (base if base.is_absolute() else REPO_ROOT / base) / profile["name"]
