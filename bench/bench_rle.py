"""RLE throughput (clothparse.rle): how fast Kaggle run-length masks decode and encode.

The iMaterialist reader decodes one RLE per garment instance (≈ 330 k instances for 45 k images in
the Kaggle 2019 train.csv), so decode speed bounds how fast a store can be built from it.
"""
from __future__ import annotations

import numpy as np

from clothparse import rle

from benchlib import Row, bench, best_time


def blob_masks(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Garment-like instance masks: a filled ellipse with a wavy outline (1–3 runs per column)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        ry, rx = rng.uniform(0.15, 0.35) * height, rng.uniform(0.15, 0.35) * width
        angle = np.arctan2(yy - cy, xx - cx)
        wobble = 1 + 0.15 * np.sin(rng.integers(3, 9) * angle + rng.uniform(0, 6.3))
        out.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= wobble ** 2)
    return out


def striped_masks(n: int, height: int, width: int, runs_per_column: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Masks whose garment columns (the middle 40 %) hold ``runs_per_column`` runs each: a hard case
    (lace, stripes, hair over a garment) with many short runs."""
    rng = np.random.default_rng(seed)
    c0, c1 = int(0.3 * width), int(0.7 * width)
    out = []
    for _ in range(n):
        mask = np.zeros((height, width), dtype=bool)
        for c in range(c0, c1):
            edges = np.sort(rng.choice(np.arange(height // 10, height - height // 10), 2 * runs_per_column,
                                       replace=False))
            for a, b in zip(edges[0::2], edges[1::2]):
                mask[a:b + 1, c] = True  # +1: touching runs would merge; the choice above keeps them apart
        out.append(mask)
    return out


def _rows(label: str, masks: list[np.ndarray], quick: bool) -> list[Row]:
    h, w = masks[0].shape
    strings = [rle.encode(m) for m in masks]
    n_runs = sum(len(s.split()) // 2 for s in strings)
    garment_cols = sum(int(m.any(axis=0).sum()) for m in masks)
    for m, s in zip(masks[:3], strings[:3]):  # the benchmark measures a correct round trip
        assert np.array_equal(rle.decode(s, h, w), m)
    repeat = 2 if quick else 3
    t_dec = best_time(lambda: [rle.decode(s, h, w) for s in strings], repeat=repeat)
    t_enc = best_time(lambda: [rle.encode(m) for m in masks], repeat=repeat)
    mb = len(masks) * h * w / 1e6
    note = f"{n_runs / max(garment_cols, 1):.1f} runs/garment column, {n_runs / len(masks):,.0f} runs/mask"
    return [
        Row(f"decode {label}", mb / t_dec, "MB mask/s", f"{len(masks) / t_dec:,.0f} masks/s; {note}"),
        Row(f"encode {label}", mb / t_enc, "MB mask/s", f"{len(masks) / t_enc:,.0f} masks/s"),
    ]


@bench("rle", "Kaggle RLE decode/encode throughput at the store size and at a real photo size")
def rle_throughput(quick: bool) -> list[Row]:
    n_small, n_big = (20, 3) if quick else (200, 20)
    return (_rows("288×192 blob", blob_masks(n_small, 288, 192), quick)
            + _rows("1000×700 striped", striped_masks(n_big, 1000, 700), quick))
