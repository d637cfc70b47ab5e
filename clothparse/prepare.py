"""From a profile to training-ready data: source → (refine) → store → split.

Table 1 compares a U-Net trained on the *base* data with one trained on the *refined* data. Both
are evaluated on the same images — the refined test split — so the comparison measures the effect
of training on cleaner data, not of a different test set. The split is therefore drawn once, on the
base dataset's image ids, and the refined dataset inherits it id by id (refinement keeps ids).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import runs
from .profiles import REPO_ROOT, work_dir

VARIANTS = ("base", "refined")


@dataclass
class Prepared:
    """A profile's data, ready to train on."""

    variant: str
    source_root: Path
    data_root: Path
    store: object                         # clothparse.store.Store
    splits: pd.Series                     # image_id → train / valid / test (aligned with store order)
    refine_report: dict | None = None
    notes: list[str] = field(default_factory=list)

    def indices(self, split: str) -> np.ndarray:
        """Store rows of one split."""
        return np.flatnonzero(self.splits.to_numpy() == split)


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


def source_root(profile: dict, progress: bool = True) -> Path:
    """The dataset folder of a profile; generates the synthetic data on first use."""
    data = profile["data"]
    kind = data["kind"]
    if kind == "synthetic":
        from .datasets.synthetic import generate

        return Path(generate(work_dir(profile) / "synthetic", progress=progress, **data["synthetic"]))
    if not data.get("root"):
        env = data.get("root_env") or "data.root"
        raise FileNotFoundError(f"profile {profile['name']!r} needs its {kind} data: set data.root in the profile "
                                f"or the environment variable {env}")
    root = _resolve(data["root"])
    if not root.is_dir():
        raise FileNotFoundError(f"{kind} data folder not found: {root} (profile {profile['name']!r}, data.root)")
    return root


def make_detector(profile: dict, src_root: Path):
    from . import refine

    name = profile["data"]["detector"]
    if name == "persons_csv":
        return refine.PersonsCsvDetector(src_root)
    if name == "maskrcnn":
        device = "cuda" if _want_cuda(profile) else "cpu"
        return refine.MaskRCNNDetector(device=device)
    raise ValueError(f"unknown detector {name!r} in profile {profile['name']!r}; use persons_csv or maskrcnn")


def _want_cuda(profile: dict) -> bool:
    import torch

    return profile["device"] == "cuda" or (profile["device"] == "auto" and torch.cuda.is_available())


def open_reader(kind: str, root: Path):
    from .datasets import open_dataset

    return open_dataset(kind, root)


def prepare(profile: dict, variant: str = "refined", progress: bool = True) -> Prepared:
    """Source, refinement (``variant="refined"`` where the profile refines), store and split."""
    from .split import load_or_create_split
    from .store import build_store

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    data = profile["data"]
    kind = data["kind"]
    src = source_root(profile, progress=progress)
    wdir = work_dir(profile)
    wdir.mkdir(parents=True, exist_ok=True)
    size = tuple(profile["size"])
    notes: list[str] = []

    base_reader = open_reader(kind, src)
    source = f"{kind}:{src}:{source_fingerprint(src)}"
    base_store = build_store(base_reader, wdir / "stores", size=size, source=source, refinement=None,
                             progress=progress)
    split_cfg = profile["split"]
    base_ids = list(base_store.image_ids)
    base_splits = load_or_create_split(base_ids, list(base_store.classes), wdir / "split.csv",
                                       fractions=tuple(split_cfg["fractions"]), seed=split_cfg["seed"])
    if variant == "base" or not data["refine"] or kind == "ccp":
        if variant == "refined" and (not data["refine"] or kind == "ccp"):
            notes.append("profile does not refine: the refined variant is the base data")
        splits = base_splits.reindex(base_ids)
        return Prepared(variant, src, src, base_store, splits, None, notes)

    from .refine import refine

    detector = make_detector(profile, src)
    decisions = wdir / "decisions.csv"
    report = refine(src, wdir / "refined", detector, decisions=decisions if decisions.is_file() else None,
                    progress=progress)
    refined_root = wdir / "refined"
    reader = open_reader(kind, refined_root)
    store = build_store(reader, wdir / "stores", size=size, source=source,
                        refinement=_refinement_key(refined_root), progress=progress)
    ids = list(store.image_ids)
    unknown = [i for i in ids if i not in base_splits.index]
    if unknown:
        raise ValueError(f"refined dataset has {len(unknown)} image ids the base split lacks, e.g. {unknown[:3]}")
    splits = base_splits.reindex(ids)
    report_dict = report.to_dict() if hasattr(report, "to_dict") else dict(getattr(report, "__dict__", {}))
    return Prepared(variant, src, refined_root, store, splits, report_dict, notes)


def source_fingerprint(root: Path) -> str:
    """What identifies a source dataset's content cheaply: its generator parameters (synthetic) or the size and
    modification time of its annotation files, so a changed dataset never reuses a stale store."""
    root = Path(root)
    generator = root / "GENERATOR.json"
    if generator.is_file():
        return runs.stable_hash(generator.read_text())
    files = [root / "train.csv", root / "label_descriptions.json", root / "label_list.mat"]
    files += sorted((root / "annotations" / "pixel-level").glob("*.mat"))[:1] if (root / "annotations").is_dir() else []
    return runs.stable_hash([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()])


def _refinement_key(refined_root: Path) -> str:
    """What identifies a refined dataset: its REFINE.json (source hash, detector, margins, decisions)."""
    marker = refined_root / "REFINE.json"
    return marker.read_text() if marker.is_file() else str(refined_root)
