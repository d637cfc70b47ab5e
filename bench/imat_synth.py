"""A cheap stand-in for the Kaggle iMaterialist 2019 training set at its real scale, for cost measurements.

:func:`write_layout` writes ``root/train/<ImageId>.jpg``, ``root/train.csv``, ``root/label_descriptions.json`` and
``root/persons.csv`` (the file :class:`clothparse.refine.PersonsCsvDetector` reads) for ``fraction`` of the
real set's 45,622 images, so that the reader, refinement, split and store can be timed at a known fraction of
the paper's size. Unlike :mod:`clothparse.datasets.synthetic` (people drawn for training, at the training size)
nothing here is meant to be learnt from: what has to be like the real set is what the data stage's cost
depends on.

* **Image sizes.** The long side is log-normal, median :data:`LONG_SIDE_MEDIAN` px, σ :data:`LONG_SIDE_SIGMA`
  (≈ 5 % above 2,500 px, ≈ 0.1 % above 4,000 px), clipped to [300, 6,000] px; the short side is 0.55–0.85 of
  it; 80 % of the images are portrait. JPEG decoding costs about the same per pixel for these flat-colour
  pictures as for photos (what the reader and the store pay); the files are smaller than photos.
* **CSV rows.** About :data:`ROWS_PER_IMAGE` rows per image (333,415 / 45,625 in the Kaggle file): an outfit of
  garments (top or dress, a lower garment, sometimes an overtop, usually two shoes, sometimes a bag), garment
  parts (sleeves, necklines, pockets, collars, …) and accessories, with the real category ids and attribute
  ids of ``label_descriptions.json`` (``ClassId`` like ``"6_28_77"``); about 1.5 % of the images hold a
  jumpsuit (the reader drops those).
* **Masks.** Every instance is an ellipse in the person's box, written as a valid Kaggle RLE. Its RLE has one
  run per column it covers, as a compact real garment does, so the CSV has about the real number of runs.
* **People.** :data:`MULTI_PERSON_SHARE` of the images (the paper's 12,188 of 45,622) show further,
  unannotated people beside the annotated one, at distances such that most are cropped away at x = 30 %,
  some at 10 % or 0 %, and about :data:`REVIEW_SHARE` of them stay for the manual review; 5 % of the images
  are product shots without a person.

Everything depends only on ``(seed, image index)``: a 5 % set is the first 5 % of a 20 % set.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clothparse.datasets.synthetic import default_label_descriptions

__all__ = ["FULL_IMAGES", "write_layout", "ellipse_rle", "image_size", "draw_rows"]

#: Images of the Kaggle training set the paper used (section 4.1).
FULL_IMAGES = 45_622
ROWS_PER_IMAGE = 7.3
LONG_SIDE_MEDIAN = 1_200
LONG_SIDE_SIGMA = 0.45
LONG_SIDE_RANGE = (300, 6_000)
MULTI_PERSON_SHARE = 12_188 / 45_622
REVIEW_SHARE = 1_030 / 12_188
PRODUCT_SHARE = 0.05
JUMPSUIT_SHARE = 0.015
JPEG_QUALITY = 90

# Expected instances per image of the parts and accessories (the garments come from the outfit).
_EXTRA_RATES: dict[int, float] = {
    31: 1.25, 33: 0.70, 32: 0.55, 28: 0.22, 29: 0.15, 35: 0.17, 27: 0.02, 30: 0.01,   # garment parts
    34: 0.08, 36: 0.10, 37: 0.05, 38: 0.03, 39: 0.03, 40: 0.01, 41: 0.01, 42: 0.05,   # closures, decorations
    43: 0.05, 44: 0.02, 45: 0.01,
    13: 0.10, 14: 0.06, 15: 0.07, 16: 0.02, 17: 0.01, 18: 0.07, 19: 0.14, 20: 0.005,  # accessories
    21: 0.10, 22: 0.03, 25: 0.03, 26: 0.01,
}
_GARMENTS_WITH_ATTRIBUTES = frozenset(range(13))


@dataclass(frozen=True)
class Row:
    class_id: str       # "<category>[_<attribute>...]"
    box: tuple[float, float, float, float]   # ellipse bounding box x0, y0, x1, y1 (pixels)


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """``(height, width)`` of one image, drawn from the distribution the module docstring states."""
    lo, hi = LONG_SIDE_RANGE
    long_side = int(np.clip(round(LONG_SIDE_MEDIAN * math.exp(LONG_SIDE_SIGMA * rng.standard_normal())), lo, hi))
    short_side = max(lo // 2, int(round(long_side * rng.uniform(0.55, 0.85))))
    return (long_side, short_side) if rng.random() < 0.8 else (short_side, long_side)


def ellipse_rle(box: tuple[float, float, float, float], height: int, width: int) -> str:
    """Kaggle RLE (1-indexed starts, column-major) of the filled ellipse in ``box``: one run per column it covers.

    Built from the per-column extent, never from an H×W array, so a 6,000 px image costs nothing to annotate.
    Rows 0 and ``height - 1`` are left out, so runs of neighbouring columns never touch (a valid RLE of
    disjoint, sorted runs)."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
    cols = np.arange(max(0, math.floor(cx - rx)), min(width, math.ceil(cx + rx) + 1))
    half = ry * np.sqrt(np.clip(1 - ((cols + 0.5 - cx) / rx) ** 2, 0, None))
    top = np.clip(np.ceil(cy - half - 0.5), 1, height - 1).astype(np.int64)
    bottom = np.clip(np.floor(cy + half - 0.5) + 1, 1, height - 1).astype(np.int64)
    keep = bottom > top
    cols, top, bottom = cols[keep], top[keep], bottom[keep]
    pairs = np.empty(2 * len(cols), dtype=np.int64)
    pairs[0::2] = cols * height + top + 1
    pairs[1::2] = bottom - top
    return " ".join(map(str, pairs.tolist()))


def _class_id(category: int, rng: np.random.Generator, n_attributes: int) -> str:
    if category not in _GARMENTS_WITH_ATTRIBUTES:
        return str(category)
    attrs = sorted(rng.choice(n_attributes, size=int(rng.integers(0, 5)), replace=False).tolist())
    return "_".join(str(v) for v in (category, *attrs))


def _outfit(rng: np.random.Generator, jumpsuit: bool) -> list[tuple[int, str]]:
    """Garment categories with the region of the person's box they cover ("upper", "lower", "whole", …)."""
    if jumpsuit:
        items = [(11, "whole")]
    elif rng.random() < 0.23:
        items = [(10, "whole")]
    else:
        items = [(int(rng.choice([1, 0, 2], p=[0.6, 0.3, 0.1])), "upper"),
                 (int(rng.choice([6, 8, 7], p=[0.55, 0.3, 0.15])), "lower")]
    if rng.random() < 0.28:
        items.append((int(rng.choice([4, 9, 3, 2, 5], p=[0.55, 0.2, 0.1, 0.1, 0.05])), "upper"))
    shoes = rng.random()
    items += [(23, "foot")] * (2 if shoes < 0.5 else 1 if shoes < 0.6 else 0)
    if rng.random() < 0.16:
        items.append((24, "side"))
    return items


_REGION = {"upper": (0.15, 0.55), "lower": (0.5, 0.92), "whole": (0.15, 0.9), "foot": (0.9, 1.0),
           "side": (0.35, 0.65), "small": (0.1, 0.9)}


def _region_box(region: str, person: tuple[float, float, float, float], rng: np.random.Generator,
                scale: float = 1.0) -> tuple[float, float, float, float]:
    px0, py0, px1, py1 = person
    pw, ph = px1 - px0, py1 - py0
    a, b = _REGION[region]
    top, bottom = py0 + a * ph, py0 + b * ph
    if scale < 1.0:
        h = (bottom - top) * scale
        top = rng.uniform(top, bottom - h)
        bottom = top + h
    w = pw * (0.8 if region in ("upper", "lower", "whole") else 0.3) * (scale if scale < 1 else 1.0)
    cx = rng.uniform(px0 + w / 2, max(px0 + w / 2, px1 - w / 2))
    return (cx - w / 2, top, cx + w / 2, bottom)


def draw_rows(rng: np.random.Generator, person: tuple[float, float, float, float], n_attributes: int,
              *, jumpsuit: bool, product: bool) -> list[Row]:
    """The CSV rows of one image (garments first, then parts and accessories)."""
    rows = []
    if product:
        return [Row(_class_id(int(rng.choice([1, 6, 10, 24, 23])), rng, n_attributes), person)]
    for category, region in _outfit(rng, jumpsuit):
        rows.append(Row(_class_id(category, rng, n_attributes), _region_box(region, person, rng)))
    for category, rate in _EXTRA_RATES.items():
        for _ in range(int(rng.poisson(rate))):
            rows.append(Row(str(category), _region_box("small", person, rng, scale=rng.uniform(0.05, 0.3))))
    return rows


#: Shares of the multi-person images removed by the crop rounds x = 30, 10, 0 % (the rest goes to review).
_ROUND_SHARES = (0.75, 0.10, 1 - 0.85 - REVIEW_SHARE)


def _others(rng: np.random.Generator, span: tuple[float, float], width: int
            ) -> list[tuple[float, float]]:
    """Column extents of unannotated people beside the annotated one, whose GT mask covers columns ``span``.

    A person counts for :class:`~clothparse.refine.PersonsCsvDetector` when ≥ 30 % of its box lies in the crop,
    and the crop of round x is the span widened by x % of its width; the gap to the span is drawn so that the
    rounds x = 30, 10, 0 % remove them in the shares :data:`_ROUND_SHARES`, and the rest overlaps the span
    (→ review)."""
    g0, g1 = span
    g = g1 - g0
    out = []
    for _ in range(1 if rng.random() < 0.85 else 2):
        w = g * rng.uniform(0.6, 1.1)
        u = rng.random()
        a, b, c = np.cumsum(_ROUND_SHARES)
        seen = 0.3 * w              # a person whose box shows less than this in a crop is not counted
        gap = (rng.uniform(0.3 * g - seen + 0.02 * g, 0.3 * g - seen + 0.5 * g) if u < a
               else rng.uniform(0.1 * g - seen, 0.3 * g - seen) if u < b
               else rng.uniform(-seen, 0.1 * g - seen) if u < c
               else rng.uniform(-0.9 * w, -seen))
        right = rng.random() < 0.5
        if right and g1 + gap + 0.5 * w > width:
            right = False
        elif not right and g0 - gap - 0.5 * w < 0:
            right = True
        out.append((g1 + gap, g1 + gap + w) if right else (g0 - gap - w, g0 - gap))
    return out


def _clipped(x0: float, y0: float, x1: float, y1: float, height: int, width: int) -> tuple[int, ...] | None:
    """The box in whole pixels inside the image, or None when less than half of it is (left out)."""
    box = (max(0, int(x0)), max(0, int(y0)), min(width, math.ceil(x1)), min(height, math.ceil(y1)))
    return box if (box[2] - box[0]) >= 0.5 * (x1 - x0) and box[3] > box[1] else None


def _image(height: int, width: int, rows: list[Row], others, rng: np.random.Generator) -> Image.Image:
    colour = tuple(int(v) for v in rng.integers(120, 240, 3))
    im = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(im)
    for box in others:
        draw.rectangle(box, fill=(90, 70, 60))
    for row in rows:
        draw.ellipse(row.box, fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return im


def _one(seed: int, i: int, n_attributes: int) -> tuple[str, int, int, list[Row], list, Image.Image]:
    rng = np.random.default_rng([seed, i])
    height, width = image_size(rng)
    product = rng.random() < PRODUCT_SHARE
    pw = width * rng.uniform(0.3, 0.45)
    px0 = rng.uniform(0.15 * width, 0.85 * width - pw)
    person = (px0, height * rng.uniform(0.02, 0.1), px0 + pw, height * rng.uniform(0.9, 0.98))
    rows = draw_rows(rng, person, n_attributes, jumpsuit=rng.random() < JUMPSUIT_SHARE, product=product)
    people = []
    if not product:
        span = (max(0.0, min(r.box[0] for r in rows)), min(float(width), max(r.box[2] for r in rows)))
        extents = [(person[0], person[2])]
        if rng.random() < MULTI_PERSON_SHARE:
            extents += _others(rng, span, width)
        for x0, x1 in extents:
            box = _clipped(x0, person[1], x1, person[3], height, width)
            if box is not None:
                people.append(box)
    return f"{seed:02x}{i:030x}.jpg", height, width, rows, people, _image(height, width, rows, people[1:], rng)


def write_layout(root: str | Path, fraction: float, *, seed: int = 0, progress: bool = False) -> dict:
    """Write ``round(fraction × 45,622)`` images in the iMaterialist layout under ``root`` (emptied first).

    Returns counts: images, rows, persons rows, multi-person images, megapixels, bytes of ``train.csv`` and
    of the images."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    n = max(1, round(fraction * FULL_IMAGES))
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    (root / "train").mkdir(parents=True)
    labels = default_label_descriptions()
    shutil.copyfile(labels, root / "label_descriptions.json")
    n_attributes = len(json.loads(Path(labels).read_text())["attributes"])
    stats = {"images": n, "rows": 0, "person_rows": 0, "multi_person": 0, "megapixels": 0.0, "image_bytes": 0}
    from tqdm.auto import tqdm

    with open(root / "train.csv", "w", newline="") as tf, open(root / "persons.csv", "w", newline="") as pf:
        train, persons = csv.writer(tf, lineterminator="\n"), csv.writer(pf, lineterminator="\n")
        train.writerow(("ImageId", "EncodedPixels", "Height", "Width", "ClassId"))
        persons.writerow(("ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated"))
        for i in tqdm(range(n), disable=not progress, desc="iMaterialist layout", unit="img"):
            image_id, h, w, rows, people, image = _one(seed, i, n_attributes)
            path = root / "train" / image_id
            image.save(path, format="JPEG", quality=JPEG_QUALITY)
            for row in rows:
                train.writerow((image_id, ellipse_rle(row.box, h, w), h, w, row.class_id))
            for k, box in enumerate(people):
                persons.writerow((image_id, k, *box, int(k == 0)))
            stats["rows"] += len(rows)
            stats["person_rows"] += len(people)
            stats["multi_person"] += len(people) > 1
            stats["megapixels"] += h * w / 1e6
            stats["image_bytes"] += path.stat().st_size
    stats["csv_bytes"] = (root / "train.csv").stat().st_size
    stats["megapixels"] = round(stats["megapixels"], 1)
    return stats
