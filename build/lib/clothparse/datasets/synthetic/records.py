"""What :func:`~.scene.draw_image` returns and :func:`~.dataset.generate` writes: one image's records."""
from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np


class Instance(NamedTuple):
    """One row of train.csv: original category id, attribute ids, boolean H×W mask."""

    category: int
    attributes: tuple[int, ...]
    mask: np.ndarray


class PersonBox(NamedTuple):
    """One row of persons.csv (pixel box, x_max/y_max exclusive)."""

    person: int
    x_min: int
    y_min: int
    x_max: int
    y_max: int
    annotated: bool


class SyntheticImage(NamedTuple):
    image_id: str
    image: np.ndarray                 # H×W×3 uint8, before JPEG compression
    instances: list[Instance]         # in train.csv row order
    persons: list[PersonBox]
    semantic: np.ndarray              # H×W uint8 0..8: merged class of what was painted (the reader's answer)
    kind: str                         # "person", "jumpsuit" or "product"


def class_id_string(inst: Instance) -> str:
    """The Kaggle ``ClassId``: ``"<category>[_<attribute>...]"``."""
    return "_".join(str(v) for v in (inst.category, *inst.attributes))


def image_id(seed: int, index: int) -> str:
    """Deterministic Kaggle-like file name: 32 hex digits + ``.jpg``."""
    return hashlib.md5(f"clothparse-synthetic/{int(seed)}/{int(index)}".encode()).hexdigest() + ".jpg"
