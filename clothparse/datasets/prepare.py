"""From a profile to training-ready data: source → (refine) → store → split.

Table 1 compares a U-Net trained on the *base* data with one trained on the *refined* data. Both
are evaluated on the same images — the refined test split — so the comparison measures the effect
of training on cleaner data, not of a different test set. The split is therefore drawn once, on the
base dataset's image ids, and the refined dataset inherits it id by id (refinement keeps ids).

A store is keyed on its source (:func:`source_fingerprint`): the relative path, size and mtime of
every file a reader reads, photos included, so a repaired or replaced photo gives a new store.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clothparse import refine
from clothparse.datasets import ccp, imaterialist, open_dataset
from clothparse.datasets.split import load_or_create_split
from clothparse.datasets.store import build_store
from clothparse.datasets.synthetic import generate
from clothparse.devices import resolve_device
from clothparse.keyed import stable_hash
from clothparse.profiles import Profile, under_repo

VARIANTS = ("base", "refined")


@dataclass
class Prepared:
    """A profile's data, ready to train on.

    ``n_source_images``: images of the source dataset; ``n_skipped``: how many of them are not in
    ``store`` (left out by the reader, the store build or, for the refined variant, refinement);
    ``skips_path``: the store's ``meta.json``, which lists the reader's and the store build's reasons
    (refinement's are in ``refine_report``)."""

    variant: str
    source_root: Path
    data_root: Path
    store: object                         # clothparse.datasets.store.Store
    splits: pd.Series                     # image_id → train / valid / test (aligned with store order)
    refine_report: dict | None = None
    notes: list[str] = field(default_factory=list)
    n_source_images: int = 0
    n_skipped: int = 0
    skips_path: Path | None = None

    def indices(self, split: str) -> np.ndarray:
        """Store rows of one split."""
        return np.flatnonzero(self.splits.to_numpy() == split)


def source_root(P: Profile, progress: bool = True) -> Path:
    """The dataset folder of a profile; generates the synthetic data on first use."""
    kind = P.data.kind
    if kind == "synthetic":
        return Path(generate(P.work_path / "synthetic", progress=progress, **dataclasses.asdict(P.data.synthetic)))
    if not P.data.root:
        env = P.data.root_env or "data.root"
        raise FileNotFoundError(f"profile {P.name!r} needs its {kind} data: set data.root in the profile "
                                f"or the environment variable {env}")
    root = under_repo(P.data.root)
    if not root.is_dir():
        raise FileNotFoundError(f"{kind} data folder not found: {root} (profile {P.name!r}, data.root)")
    return root


def make_detector(P: Profile, src_root: Path):
    """The person detector refinement uses (``data.detector``), on the profile's device."""
    name = P.data.detector
    if name == "persons_csv":
        return refine.PersonsCsvDetector(src_root)
    if name == "maskrcnn":
        return refine.MaskRCNNDetector(device=resolve_device(P.device))
    raise ValueError(f"unknown detector {name!r} in profile {P.name!r}; use persons_csv or maskrcnn")


def open_reader(kind: str, root: Path):
    return open_dataset(kind, root)


def prepare(P: Profile, variant: str = "refined", progress: bool = True) -> Prepared:
    """Source, refinement (``variant="refined"`` where the profile refines), store and split."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    kind, size = P.data.kind, tuple(P.size)
    src = source_root(P, progress=progress)
    wdir = P.work_path
    wdir.mkdir(parents=True, exist_ok=True)

    source = f"{kind}:{src}:{source_fingerprint(kind, src)}"  # before reading: a later change gives a new key
    base_store = build_store(open_reader(kind, src), wdir / "stores", size=size, source=source, refinement=None,
                             progress=progress)
    base_ids = list(base_store.image_ids)
    base_splits = load_or_create_split(base_ids, list(base_store.classes), wdir / "split.csv",
                                       fractions=tuple(P.split.fractions), seed=P.split.seed)
    n_source = _source_count(base_store)
    if variant == "base" or not P.refines:
        notes = ["profile does not refine: the refined variant is the base data"] if variant == "refined" else []
        return _prepared(variant, src, src, base_store, base_splits, None, notes, n_source)

    refined_root = wdir / "refined"
    decisions = wdir / "decisions.csv"
    report = refine.refine(src, refined_root, make_detector(P, src),
                           decisions=decisions if decisions.is_file() else None, progress=progress)
    store = build_store(open_reader(kind, refined_root), wdir / "stores", size=size, source=source,
                        refinement=_refinement_key(refined_root), progress=progress)
    unknown = [i for i in store.image_ids if i not in base_splits.index]
    if unknown:
        raise ValueError(f"refined dataset has {len(unknown)} image ids the base split lacks, e.g. {unknown[:3]}")
    return _prepared(variant, src, refined_root, store, base_splits, report.to_dict(), [], n_source)


def _prepared(variant: str, src: Path, data_root: Path, store, base_splits: pd.Series, refine_report: dict | None,
              notes: list[str], n_source: int) -> Prepared:
    splits = base_splits.reindex(list(store.image_ids))
    return Prepared(variant, src, data_root, store, splits, refine_report, notes, n_source_images=n_source,
                    n_skipped=n_source - len(store), skips_path=Path(store.path) / "meta.json")


def _source_count(store) -> int:
    """Images of the source: those the reader offered the store build, plus those the reader skipped."""
    return int(store.meta["n_dataset"]) + len(store.meta["skipped"]["reader"])


def source_fingerprint(kind: str, root: Path) -> str:
    """What identifies a source dataset's content cheaply: the relative path, size and modification time of
    every file its reader reads (annotations and photos; see the readers' ``input_stamps``), so a changed,
    repaired, added or removed file never reuses a stale store. One ``stat`` per file, no reading."""
    # the iMaterialist layout's reader reads imaterialist and synthetic data
    input_stamps = ccp.input_stamps if kind == "ccp" else imaterialist.input_stamps
    return stable_hash(input_stamps(Path(root)))


def _refinement_key(refined_root: Path) -> str:
    """What identifies a refined dataset: its REFINE.json (source hash, detector, margins, decisions)."""
    marker = refined_root / "REFINE.json"
    return marker.read_text() if marker.is_file() else str(refined_root)
