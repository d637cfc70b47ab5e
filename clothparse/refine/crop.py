"""Crops around the annotated person: crop boxes, the GT mask's span, the instance and semantic masks, writing
a crop.

The GT mask is the union of *all* instance masks of an image (every category, garment parts
included): that is what was annotated, so that is the person. A crop keeps the full height, so in the
column-major Kaggle RLE it is one contiguous stretch of pixels: its span and its crops are computed on
the runs, and masks are decoded only for pictures (the review's contact sheets) and for images whose
``train.csv`` size is wrong.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from clothparse import rle
from clothparse.datasets.imaterialist import resize_nearest, semantic_mask
from clothparse.refine.common import JPEG_QUALITY, Box


def crop_box(x_min: int, x_max: int, width: int, height: int, margin: float) -> Box:
    """Full-height crop around columns ``[x_min, x_max)`` widened by ``margin`` % of that width on
    each side (rounded up to whole pixels), clipped to the image."""
    # The epsilon keeps an exact whole number of pixels (30 % of 20 px) from rounding up to one more.
    extra = math.ceil(margin * (x_max - x_min) / 100 - 1e-9)
    return (max(0, x_min - extra), 0, min(width, x_max + extra), height)


def _csv_size(rows: pd.DataFrame) -> tuple[int, int]:
    sizes = set(zip(rows["Height"].tolist(), rows["Width"].tolist()))
    if len(sizes) != 1:
        raise ValueError(f"rows disagree on the image size: {sorted(sizes)}")
    try:
        h, w = (int(v) for v in sizes.pop())
    except ValueError:
        raise ValueError("Height/Width are not integers") from None
    if h < 1 or w < 1:
        raise ValueError(f"mask size must be positive, got {h}×{w}")
    return h, w


def instance_masks(rows: pd.DataFrame) -> tuple[list[np.ndarray], int, int]:
    """Decode every instance of one image; raise ``ValueError`` on bad rows (the caller names the image)."""
    h, w = _csv_size(rows)
    masks = []
    for i, enc in enumerate(rows["EncodedPixels"]):
        try:
            masks.append(rle.decode(enc, h, w))
        except ValueError as err:
            raise ValueError(f"instance {i}: {err}") from None
    return masks, h, w


def _instance_runs(rows: pd.DataFrame, h: int, w: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """0-based ``(starts, lengths)`` of every instance, validated like :func:`instance_masks` decodes them."""
    runs = []
    for i, enc in enumerate(rows["EncodedPixels"]):
        try:
            runs.append(rle.parse_runs(enc, h * w))
        except ValueError as err:
            raise ValueError(f"instance {i}: {err}") from None
    return runs


def runs_span(runs: list[tuple[np.ndarray, np.ndarray]], h: int, w: int) -> tuple[int, int]:
    """Columns ``[first, last + 1)`` that the union of the instances covers, from their runs alone (column-major
    runs: pixel ``p`` lies in column ``p // h``); ``(0, w)`` when nothing is annotated."""
    firsts = [int(s[0]) // h for s, _ in runs if s.size]
    if not firsts:
        return 0, w
    lasts = [int(s[-1] + n[-1] - 1) // h for s, n in runs if s.size]
    return min(firsts), max(lasts) + 1


def crop_runs(starts: np.ndarray, lengths: np.ndarray, h: int, x0: int, x1: int) -> str:
    """The Kaggle RLE of the full-height column crop ``[x0, x1)`` of a mask given by 0-based runs.

    Full-height columns are one contiguous stretch of the column-major pixel order, so cropping is clipping
    the runs to ``[x0·h, x1·h)`` and shifting them; runs that then touch are merged, which gives exactly
    ``rle.encode(mask[:, x0:x1])`` without decoding the mask."""
    lo, hi = x0 * h, x1 * h
    a = np.maximum(starts, lo)
    b = np.minimum(starts + lengths, hi)
    keep = b > a
    a, b = a[keep] - lo, b[keep] - lo
    if a.size > 1:
        joined = a[1:] == b[:-1]                      # a run that begins where the previous one ends
        first = np.r_[True, ~joined]
        a, b = a[first], b[np.r_[~joined, True]]
    pairs = np.empty(2 * a.size, dtype=np.int64)
    pairs[0::2] = a + 1
    pairs[1::2] = b - a
    return " ".join(map(str, pairs.tolist()))


def gt_span(rows: pd.DataFrame, image_id: str, image: np.ndarray
            ) -> tuple[list[np.ndarray] | None, tuple[int, int], str | None]:
    """The GT mask's column span of ``image``, with the instance masks fitted to the image when ``train.csv``
    states another size (and a note saying so), else ``None`` for the masks and the note.

    Masks of the right size are not decoded: the span and the crops (:func:`write_crop`) come from the runs,
    which costs a few microseconds instead of H×W work per instance."""
    h, w = _csv_size(rows)
    if image.shape[:2] == (h, w):
        return None, runs_span(_instance_runs(rows, h, w), h, w), None
    # Two real Kaggle images carry a wrong size in train.csv; like the reader, fit the
    # masks to the image (nearest neighbour); the crop's rows then state the true size.
    masks, h, w = instance_masks(rows)
    note = f"{image_id}: csv {h}×{w}, image {image.shape[0]}×{image.shape[1]}"
    h, w = image.shape[:2]
    masks = [resize_nearest(m, h, w) for m in masks]
    return masks, runs_span([_mask_runs(m) for m in masks], h, w), note


def _mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    edges = np.flatnonzero(np.diff(np.r_[False, flat, False].astype(np.int8)))
    return edges[0::2], edges[1::2] - edges[0::2]


def semantic(rows: pd.DataFrame, masks: list[np.ndarray], h: int, w: int, category_map) -> np.ndarray:
    """9-class mask of one image with the reader's rules; without a category map every annotated
    pixel is drawn as class 1 (only used for pictures)."""
    if category_map is None:
        out = np.zeros((h, w), np.uint8)
        for m in masks:
            out[m] = 1
        return out
    instances = []
    for c, m in zip(rows["ClassId"], masks):
        cid = str(c).split("_")[0]
        # A picture, not training data: skip what the reader would reject (jumpsuit, unknown ids).
        if cid.isdigit() and int(cid) in category_map.to_class and int(cid) not in category_map.excluded_ids:
            instances.append((int(cid), m))
    return semantic_mask(instances, category_map, shape=(h, w))


def write_crop(out: Path, image_id: str, image: np.ndarray, masks: list[np.ndarray] | None, box: Box,
               rows: pd.DataFrame, persons: pd.DataFrame | None
               ) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    """Write the crop ``box`` of one image to ``out/train``; returns its ``train.csv`` rows, its
    ``persons.csv`` rows (``None`` without ``persons``) and how many instances vanished in it.

    ``masks``: the instance masks fitted to the image (see :func:`gt_span`), or ``None`` to crop the rows'
    RLEs directly (their size is the image's)."""
    from PIL import Image

    x0, _, x1, _ = box
    # One more lossy generation, so the least lossy settings: quality 95, no chroma subsampling (4:4:4).
    Image.fromarray(np.ascontiguousarray(image[:, x0:x1])).save(
        out / "train" / image_id, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    new = rows.copy()
    h = image.shape[0]
    if masks is None:
        encoded = [crop_runs(*rle.parse_runs(e, h * image.shape[1]), h, x0, x1) for e in rows["EncodedPixels"]]
    else:
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
