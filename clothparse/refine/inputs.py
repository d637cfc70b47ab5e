"""Refinement's inputs, read and checked before anything is written: the source dataset, the
review decisions, the arguments, and the key that says whether an earlier output still holds."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from clothparse.categories import imaterialist_category_map
from clothparse.datasets.imaterialist import input_stamps
from clothparse.keyed import sha256_file
from clothparse.refine.common import REFINE_VERSION, Grouped, hash_json, read_train_csv


@dataclass(frozen=True)
class Source:
    """A dataset in the iMaterialist layout, its tables grouped by image."""

    root: Path
    table: pd.DataFrame                  # train.csv, all strings
    groups: Grouped                      # its rows by ImageId
    persons: pd.DataFrame | None         # persons.csv (synthetic data) or None
    persons_of: Grouped | None
    category_map: object | None          # from label_descriptions.json, for pictures only

    @property
    def image_ids(self) -> list[str]:
        return sorted(self.groups.spans)

    @property
    def labels_path(self) -> Path:
        return self.root / "label_descriptions.json"


def check_arguments(src: Path, out: Path, margins: Sequence[float], chunk_size: int) -> tuple[float, ...]:
    """The margins as floats; raises on a missing source, an out_root that would overwrite it, bad numbers."""
    train_csv = src / "train.csv"
    if not train_csv.is_file():
        raise FileNotFoundError(f"train.csv not found: {train_csv}")
    if not (src / "train").is_dir():
        raise FileNotFoundError(f"image folder not found: {src / 'train'}")
    if out.resolve() == src.resolve() or out.resolve().is_relative_to((src / "train").resolve()):
        raise ValueError(f"out_root {out} must not be src_root or lie inside its image folder")
    margins = tuple(float(m) for m in margins)
    if not margins or any(not math.isfinite(m) or m < 0 for m in margins):
        raise ValueError(f"margins must be non-negative percentages, at least one; got {margins}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")
    return margins


def read_decisions(path: Path, out: Path) -> tuple[dict[str, str], str]:
    """``ImageId → keep/drop`` of a decisions CSV (blank: undecided, left out) and the file's sha256."""
    if not path.is_file():
        raise FileNotFoundError(f"decisions file not found: {path}")
    if path.resolve() == (out / "review.csv").resolve():
        raise ValueError(f"{path} is rewritten by every run: copy it elsewhere "
                         f"(e.g. {out / 'decisions.csv'}) and pass the copy")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("ImageId", "decision") if c not in df.columns]
    if missing:
        raise ValueError(f"decisions file {path}: missing columns {missing} (need ImageId,decision)")
    decided: dict[str, str] = {}
    for i, (image_id, decision) in enumerate(zip(df["ImageId"], df["decision"])):
        d = decision.strip().lower()
        if d == "":
            continue              # left blank: undecided
        if d not in ("keep", "drop"):
            raise ValueError(f"decisions file {path}, row {i + 2} ({image_id}): decision must be "
                             f"'keep' or 'drop', got {decision!r}")
        if image_id in decided and decided[image_id] != d:
            raise ValueError(f"decisions file {path}: {image_id} is decided twice ({decided[image_id]} and {d})")
        decided[image_id.strip()] = d
    return decided, sha256_file(path)


def refine_key(src: Path, identity: dict, margins: tuple[float, ...], decisions_sha: str | None) -> str:
    """What decides the output: the source's annotation files, the size and modification time of every
    image (a repaired or replaced photo is refined again), the detector, the margins, the decisions and
    the version."""
    labels, persons = src / "label_descriptions.json", src / "persons.csv"
    return hash_json({"version": REFINE_VERSION, "train_csv": sha256_file(src / "train.csv"),
                      "images": hash_json(input_stamps(src)),
                      "labels": sha256_file(labels) if labels.is_file() else None,
                      "persons": sha256_file(persons) if persons.is_file() else None,
                      "detector": identity, "margins": margins, "decisions": decisions_sha})


def read_source(src: Path) -> Source:
    """Read and check ``train.csv``, ``persons.csv`` and ``label_descriptions.json`` of ``src``."""
    table = read_train_csv(src / "train.csv")
    persons_path = src / "persons.csv"
    persons = pd.read_csv(persons_path) if persons_path.is_file() else None
    if persons is not None and "ImageId" not in persons.columns:
        raise ValueError(f"{persons_path}: no ImageId column (have {list(persons.columns)})")
    category_map = None
    if (src / "label_descriptions.json").is_file():
        category_map = imaterialist_category_map(src / "label_descriptions.json")
    return Source(src, table, Grouped(table), persons, Grouped(persons) if persons is not None else None,
                  category_map)
