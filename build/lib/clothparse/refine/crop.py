"""Crops around the annotated person: crop boxes, the instance and semantic masks, writing a crop.

The GT mask is the union of *all* instance masks of an image (every category, garment parts
included): that is what was annotated, so that is the person. A crop keeps the full height.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import rle
from .common import JPEG_QUALITY, Box


def crop_box(x_min: int, x_max: int, width: int, height: int, margin: float) -> Box:
    """Full-height crop around columns ``[x_min, x_max)`` widened by ``margin`` % of that width on
    each side (rounded up to whole pixels), clipped to the image."""
    # The epsilon keeps an exact whole number of pixels (30 % of 20 px) from rounding up to one more.
    extra = math.ceil(margin * (x_max - x_min) / 100 - 1e-9)
    return (max(0, x_min - extra), 0, min(width, x_max + extra), height)


def instance_masks(rows: pd.DataFrame) -> tuple[list[np.ndarray], int, int]:
    """Decode every instance of one image; raise ``ValueError`` on bad rows (the caller names the image)."""
    sizes = set(zip(rows["Height"].tolist(), rows["Width"].tolist()))
    if len(sizes) != 1:
        raise ValueError(f"rows disagree on the image size: {sorted(sizes)}")
    try:
        h, w = (int(v) for v in sizes.pop())
    except ValueError:
        raise ValueError("Height/Width are not integers") from None
    masks = []
    for i, enc in enumerate(rows["EncodedPixels"]):
        try:
            masks.append(rle.decode(enc, h, w))
        except ValueError as err:
            raise ValueError(f"instance {i}: {err}") from None
    return masks, h, w


def gt_masks(rows: pd.DataFrame, image_id: str, image: np.ndarray
             ) -> tuple[list[np.ndarray], tuple[int, int], str | None]:
    """The instance masks of ``image`` at its true size, the GT mask's column span, and a note
    when ``train.csv`` stated another size (``None`` otherwise)."""
    masks, h, w = instance_masks(rows)
    note = None
    if image.shape[:2] != (h, w):
        # Two real Kaggle images carry a wrong size in train.csv; like the reader, fit the
        # masks to the image (nearest neighbour); the crop's rows then state the true size.
        from ..datasets.imaterialist import resize_nearest

        note = f"{image_id}: csv {h}×{w}, image {image.shape[0]}×{image.shape[1]}"
        h, w = image.shape[:2]
        masks = [resize_nearest(m, h, w) for m in masks]
    gt = np.zeros((h, w), bool)
    for m in masks:
        gt |= m
    cols = np.flatnonzero(gt.any(axis=0))
    # No annotated pixel: nothing to crop around, the whole image goes to review.
    span = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, w)
    return masks, span, note


def semantic(rows: pd.DataFrame, masks: list[np.ndarray], h: int, w: int, category_map) -> np.ndarray:
    """9-class mask of one image with the reader's rules; without a category map every annotated
    pixel is drawn as class 1 (only used for pictures)."""
    if category_map is None:
        out = np.zeros((h, w), np.uint8)
        for m in masks:
            out[m] = 1
        return out
    from ..datasets.imaterialist import semantic_mask

    instances = []
    for c, m in zip(rows["ClassId"], masks):
        cid = str(c).split("_")[0]
        # A picture, not training data: skip what the reader would reject (jumpsuit, unknown ids).
        if cid.isdigit() and int(cid) in category_map.to_class and int(cid) not in category_map.excluded_ids:
            instances.append((int(cid), m))
    return semantic_mask(instances, category_map, shape=(h, w))


def write_crop(out: Path, image_id: str, image: np.ndarray, masks: list[np.ndarray], box: Box,
               rows: pd.DataFrame, persons: pd.DataFrame | None
               ) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    """Write the crop ``box`` of one image to ``out/train``; returns its ``train.csv`` rows, its
    ``persons.csv`` rows (``None`` without ``persons``) and how many instances vanished in it."""
    from PIL import Image

    x0, _, x1, _ = box
    # One more lossy generation, so the least lossy settings: quality 95, no chroma subsampling (4:4:4).
    Image.fromarray(np.ascontiguousarray(image[:, x0:x1])).save(
        out / "train" / image_id, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    new = rows.copy()
    encoded = [rle.encode(m[:, x0:x1]) for m in masks]
    keep = np.array([e != "" for e in encoded], dtype=bool)
    new["EncodedPixels"] = encoded
    new["Width"] = str(x1 - x0)
    new["Height"] = str(image.shape[0])
    kept_persons = None
    if persons is not None:
        # Translated, not clipped: a person cut by the crop keeps its true extent, so the visible
        # share stays known (x_min may be negative). People wholly outside the crop are dropped.
        p = persons.copy()
        p["x_min"] -= x0
        p["x_max"] -= x0
        kept_persons = p[(p["x_max"] > 0) & (p["x_min"] < x1 - x0)]
    return new[keep], kept_persons, int((~keep).sum())
