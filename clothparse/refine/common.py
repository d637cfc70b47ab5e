"""Constants and small file/table helpers shared by the refinement modules.

Everything here is about reading the iMaterialist layout (``train.csv``, ``train/<ImageId>``) and
hashing inputs; none of it knows about people, crops or the review.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from clothparse.keyed import stable_hash

#: Bumped whenever the algorithm or the output layout changes (part of every cache key).
REFINE_VERSION = 1
#: The paper's margins (% of the GT mask's width added left and right), in the order applied.
DEFAULT_MARGINS: tuple[int, ...] = (30, 10, 0)
#: JPEG settings for re-encoded crops.
JPEG_QUALITY = 95

Box = tuple[int, int, int, int]          # x_min, y_min, x_max, y_max in pixels, max exclusive

TRAIN_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId")
PERSONS_COLUMNS = ("ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated")


def hash_json(obj) -> str:
    """Full-length sha256 of a JSON-able object: the refinement and detection-cache keys.

    Full length (not ``stable_hash``'s default 12 digits): these keys name caches on disk, where two inputs
    sharing a short digest would silently reuse each other's outputs.
    """
    return stable_hash(obj, length=64)


def read_train_csv(path: Path) -> pd.DataFrame:
    # All strings: rows of images kept as they are are written back verbatim.
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in TRAIN_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (have {list(df.columns)})")
    return df


def load_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:           # other file system, no permission for links, ...
        shutil.copy2(src, dst)


class Grouped:
    """Rows of a table by ImageId, without building one DataFrame per image (45k groups are slow)."""

    def __init__(self, df: pd.DataFrame):
        ids = df["ImageId"].astype(str).to_numpy()
        order = np.argsort(ids, kind="stable")        # keeps each image's row order
        self.df = df.iloc[order].reset_index(drop=True)
        ids = ids[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
        stops = np.r_[starts[1:], len(ids)]
        self.spans = {str(ids[a]): (int(a), int(b)) for a, b in zip(starts, stops)}

    def rows(self, image_id: str) -> pd.DataFrame:
        a, b = self.spans.get(image_id, (0, 0))
        return self.df.iloc[a:b]

    def take(self, image_ids: Sequence[str]) -> pd.DataFrame:
        spans = [self.spans[i] for i in image_ids if i in self.spans]
        idx = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, int)
        return self.df.iloc[idx]
