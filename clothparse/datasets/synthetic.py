"""Synthetic people in clothes, written in the iMaterialist 2019 layout: the embedded default data.

:func:`generate` writes ``root/train/<ImageId>`` (JPEG, quality 90, 4:4:4 chroma), ``root/train.csv`` (one row per
instance, Kaggle RLE, ``ClassId`` = original iMaterialist category id plus random attribute ids, e.g.
``6_33_61``), ``root/label_descriptions.json`` (a copy of the real file), ``root/persons.csv`` (one row per
drawn person) and ``root/GENERATOR.json`` (version and parameters, so an existing folder can be reused).
:func:`draw_image` draws one image and returns everything it knows about it; :func:`generate` only writes that
to disk, so a test can compare the files with the drawing.

What is drawn
    Simple-geometry people (head, hair, torso, arms and legs as capsules, skin tones) of varied size, position,
    pose (arm and leg angles, bent elbows, hands on hips, raised arms, a slight lean, mirrored) on cluttered
    backgrounds (gradients, random shapes, textured patches, floor, noise), wearing garments with the
    *original* iMaterialist ids: shirt/blouse (0), top/t-shirt (1), sweater (2), cardigan (3), jacket (4),
    vest (5), pants (6), shorts (7), skirt (8), coat (9), dress (10), jumpsuit (11, in about
    ``jumpsuit_share`` of the images: the reader drops them), shoes (23, one instance per shoe) and bags (24);
    non-garment items that the merge maps to background: glasses (13), hat (14), watch (18), belt (19),
    tights (21), scarf (25); garment parts as separate instances: collar (28), lapel (29), sleeve (31, one per
    sleeve), pocket (32), neckline (33), zipper (35). Garments carry textures (plain, stripes, checks, dots,
    knit ribs, melange, denim, abstract prints) in random colours.

    Layering: an overtop (jacket, cardigan, coat, vest, open as two panels or closed) over a top or a dress,
    a top tucked into or worn over the lower garment, a bag strap across the torso. Hard cases of the paper
    are made ambiguous on purpose: a dress vs a top plus skirt in the same colour and texture (told apart
    only by a faint shade or pattern-phase difference), and a t-shirt (top) vs a sweater (overtop) of the same
    cut (told apart only by tendencies: sweaters mostly have long sleeves, rib bands and knit textures,
    t-shirts mostly short sleeves and prints).

    About ``second_person_share`` of the images show a second person beside the first (often smaller, or cut
    off by the frame), barely overlapping it, whose clothes are NOT annotated (the flaw the paper's
    refinement removes); about ``product_share`` are product shots: one garment (or a pair of shoes, or a
    bag) without a person.

Ground truth this generator guarantees (checked in ``tests/test_synthetic.py``)
    * ``SyntheticImage.semantic`` is the merged class (0..8) of what was painted at each pixel: a garment of the
      annotated person where it is visible; 0 for skin, hair, background, non-garment items and everything
      of an unannotated person. Jumpsuit pixels are 0 there too (the reader drops such images anyway).
    * The reader's rule applied to the instances of ``train.csv`` reproduces ``semantic`` exactly: kept
      garments only, the instance with fewer pixels on top, parts and non-garment items never paint and never
      erase. To make overlaps realistic, a garment instance also covers pixels hidden under *another garment*
      (the top under the panels of an open jacket, under a bag strap, a skirt's waistband under a top) whenever
      that keeps the rule exact; overlapping garment instances of different classes never have equal pixel counts.
    * Garment instance masks never cover visible skin, hair, background, non-garment items or an unannotated
      person. Every garment instance written has at least one pixel where it is the visible garment, so the
      classes listed in the CSV equal the classes of the merged mask. Fully hidden instances are not written.
    * Part instances (sleeve, collar, lapel, pocket, neckline, zipper) lie inside their garment's instance mask
      (they are the visible pixels of that part). Non-garment instances are their visible pixels.
    * ``persons.csv``: one row per drawn person: ``person`` 0 = the annotated one (``annotated=1``), 1 = the
      second person (``annotated=0``); the box is the bounding box of the person's whole drawn silhouette
      (including parts hidden behind the other person), clipped to the image, ``x_max``/``y_max`` exclusive.
      A second person has at least 40 % of its unclipped box inside the image. Product shots have no row.
    * Deterministic: image ``i`` depends only on ``(seed, i)``, the size and the shares (not on ``n_images``); its
      ``ImageId`` only on ``(seed, i)``. Scene kinds (product shot, jumpsuit, second person) follow
      low-discrepancy sequences, so their shares are close to the requested ones even for a few images.
"""
from __future__ import annotations

import colorsys
import csv
import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from ..categories import CLASSES, imaterialist_category_map
from ..rle import encode

__all__ = ["generate", "draw_image", "image_id", "class_id_string", "default_label_descriptions",
           "SyntheticImage", "Instance", "PersonBox", "GENERATOR_VERSION", "JPEG_QUALITY", "CATEGORY_NAMES"]

#: Bumped whenever the drawing changes: part of GENERATOR.json, so old folders are regenerated.
GENERATOR_VERSION: int = 1
JPEG_QUALITY: int = 90

# Original iMaterialist 2019 category ids (checked against label_descriptions.json by generate()).
SHIRT, TOP, SWEATER, CARDIGAN, JACKET, VEST, PANTS, SHORTS, SKIRT, COAT, DRESS, JUMPSUIT = range(12)
GLASSES, HAT, WATCH, BELT, TIGHTS, SHOE, BAG, SCARF = 13, 14, 18, 19, 21, 23, 24, 25
COLLAR, LAPEL, SLEEVE, POCKET, NECKLINE, ZIPPER = 28, 29, 31, 32, 33, 35
#: The names these ids must have in label_descriptions.json.
CATEGORY_NAMES: dict[int, str] = {
    0: "shirt, blouse", 1: "top, t-shirt, sweatshirt", 2: "sweater", 3: "cardigan", 4: "jacket", 5: "vest",
    6: "pants", 7: "shorts", 8: "skirt", 9: "coat", 10: "dress", 11: "jumpsuit", 13: "glasses", 14: "hat",
    18: "watch", 19: "belt", 21: "tights, stockings", 23: "shoe", 24: "bag, wallet", 25: "scarf", 28: "collar",
    29: "lapel", 31: "sleeve", 32: "pocket", 33: "neckline", 35: "zipper",
}
_EXCLUDED_CLASS = len(CLASSES)  # internal class of a jumpsuit: a garment of its own, never written as semantic


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


def default_label_descriptions() -> Path:
    """The copy of the real iMaterialist 2019 ``label_descriptions.json`` shipped in the package."""
    try:
        path = Path(str(resources.files("clothparse").joinpath("data/label_descriptions.json")))
    except (NotADirectoryError, TypeError):  # a stale editable install can expose the package as a namespace
        path = Path(__file__).resolve().parents[1] / "data" / "label_descriptions.json"
    return path


@lru_cache(maxsize=1)
def _merge() -> dict[int, int]:
    """Category id → merged class 0..8 (jumpsuit → an internal class of its own), from the shipped file."""
    cmap = imaterialist_category_map(default_label_descriptions())
    out = {cid: (0 if cid in cmap.part_ids else cls) for cid, cls in cmap.to_class.items()}
    for cid in cmap.excluded_ids:
        out[cid] = _EXCLUDED_CLASS
    return out


# =====================================================================================================
# Geometry in the body frame: x right, y down, unit = one head height, head top at (0, 0), soles ≈ 7.85.
# =====================================================================================================
_FULL_HEIGHT = 7.85


def _ellipse(cx, cy, rx, ry, n=18):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _capsule(p0, p1, r0, r1, cap0=True, cap1=True, n=5):
    """Polygon of a tapered thick segment, with round or flat ends."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    length = math.hypot(d[0], d[1])
    if length < 1e-6:
        return _ellipse(p0[0], p0[1], max(r0, r1), max(r0, r1), 10)
    a = math.atan2(d[1], d[0])
    nrm = np.array([-d[1], d[0]]) / length
    if cap1:
        t = np.linspace(a + np.pi / 2, a - np.pi / 2, n)
        end = p1 + r1 * np.stack([np.cos(t), np.sin(t)], 1)
    else:
        end = np.stack([p1 + r1 * nrm, p1 - r1 * nrm])
    if cap0:
        t = np.linspace(a - np.pi / 2, a - 3 * np.pi / 2, n)
        start = p0 + r0 * np.stack([np.cos(t), np.sin(t)], 1)
    else:
        start = np.stack([p0 - r0 * nrm, p0 + r0 * nrm])
    return np.concatenate([end, start])


def _chain(points, radii, frac=1.0, cap_end=True):
    """Capsules along a polyline (a limb), cut at ``frac`` of its length."""
    pts = [np.asarray(p, float) for p in points]
    lengths = [float(np.hypot(*(b - a))) for a, b in zip(pts[:-1], pts[1:])]
    target = max(frac, 0.02) * sum(lengths)
    polys, acc = [], 0.0
    for i, seg in enumerate(lengths):
        if acc + seg >= target - 1e-9 or i == len(lengths) - 1:
            t = min(1.0, (target - acc) / seg) if seg > 0 else 0.0
            pe = pts[i] + t * (pts[i + 1] - pts[i])
            re = radii[i] + t * (radii[i + 1] - radii[i])
            polys.append(_capsule(pts[i], pe, radii[i], re, cap1=cap_end))
            break
        polys.append(_capsule(pts[i], pts[i + 1], radii[i], radii[i + 1]))
        acc += seg
    return polys


def _point_on_chain(points, frac):
    pts = [np.asarray(p, float) for p in points]
    lengths = [float(np.hypot(*(b - a))) for a, b in zip(pts[:-1], pts[1:])]
    target, acc = frac * sum(lengths), 0.0
    for i, seg in enumerate(lengths):
        if acc + seg >= target or i == len(lengths) - 1:
            return pts[i] + min(1.0, (target - acc) / max(seg, 1e-9)) * (pts[i + 1] - pts[i])
        acc += seg
    return pts[-1]


def _hem_between(xl, xr, hem):
    """Points of a slightly curved hem between the two side ends (exclusive)."""
    t = np.linspace(0, 1, 7)[1:-1]
    return list(zip(xl + t * (xr - xl), hem + 0.05 * np.sin(np.pi * t)))


def _dir(side, angle):
    """Unit vector pointing down, turned outward (away from the body's centre line) by ``angle``."""
    return np.array([side * math.sin(angle), math.cos(angle)])


class _Body:
    """A random body: proportions and a pose (keypoints in the body frame)."""

    def __init__(self, rng: np.random.Generator, pose: bool = True):
        self.sw = rng.uniform(0.85, 1.05)          # shoulder half-width
        self.ww = rng.uniform(0.52, 0.72)          # waist half-width
        self.hw = rng.uniform(0.76, 0.95)          # hip half-width
        self.arm: dict[int, list[np.ndarray]] = {}
        self.leg: dict[int, list[np.ndarray]] = {}
        for s in (-1, 1):
            joint = np.array([s * (self.sw - 0.13), 1.62])
            kind = rng.choice(["hang", "hang", "hang", "hip", "raised", "front"]) if pose else "hang"
            if kind == "hang":
                up, bend = rng.uniform(0.04, 0.35), rng.uniform(-0.35, 0.25)
            elif kind == "hip":
                up, bend = rng.uniform(0.55, 0.9), rng.uniform(-2.3, -1.8)
            elif kind == "raised":
                up, bend = rng.uniform(1.2, 2.5), rng.uniform(-0.6, 0.5)
            else:  # forearm across the waist
                up, bend = rng.uniform(0.05, 0.3), rng.uniform(-1.7, -1.2)
            elbow = joint + 1.45 * _dir(s, up)
            wrist = elbow + 1.25 * _dir(s, up + bend)
            hand = wrist + 0.45 * _dir(s, up + bend)
            self.arm[s] = [joint, elbow, wrist, hand]
            a = rng.uniform(-0.02, 0.2) if pose else 0.06
            hip = np.array([s * self.hw * 0.5, 3.95])
            knee = hip + 1.85 * _dir(s, a)
            ankle = knee + 1.75 * _dir(s, a + (rng.uniform(-0.12, 0.08) if pose else 0.0))
            self.leg[s] = [hip, knee, ankle]
        self.skin_r = {"arm": (0.21, 0.17, 0.13, 0.1), "leg": (0.37, 0.26, 0.16)}

    def torso_half(self, y):
        return float(np.interp(y, [1.42, 2.0, 3.05, 3.75, 4.15],
                               [self.sw, self.sw - 0.12, self.ww, self.hw, self.hw * 0.96]))

    def leg_outer(self, y, s, extra=0.0):
        """|x| of the outer edge of leg ``s`` at height ``y`` (plus ``extra`` radius)."""
        hip, knee, ankle = self.leg[s]
        ys = [hip[1], knee[1], ankle[1]]
        xs = [hip[0], knee[0], ankle[0]]
        rs = self.skin_r["leg"]
        x = np.interp(y, ys, xs)
        r = np.interp(y, ys, rs) + extra
        return abs(x) + r if s * x >= 0 else max(r - abs(x), 0.0)

    def half_width(self, y, s, e, flare=0.0, flare_from=3.75):
        """Half-width of a garment on side ``s`` at height ``y``: torso, flared below ``flare_from``,
        and never narrower than the legs below the hips."""
        w = self.torso_half(min(y, 4.15))
        if y > flare_from:
            w = max(w, self.torso_half(flare_from) + flare * (y - flare_from))
        if y > 3.6:
            w = max(w, self.leg_outer(y, s) + 0.05)
        return w + e


# =====================================================================================================
# Textures: full-canvas float32 RGB arrays in image coordinates.
# =====================================================================================================
@lru_cache(maxsize=4)
def _grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


@dataclass
class _Tex:
    kind: str
    c1: np.ndarray
    c2: np.ndarray
    period: float = 6.0
    angle: float = 0.0
    phase: float = 0.0
    seed: int = 0
    wave: float = 0.05


def _rand_colour(rng, s_range=(0.0, 0.9), v_range=(0.12, 0.95)):
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*s_range), rng.uniform(*v_range)), np.float32)


def _near_colour(rng, c, amount=0.25):
    return np.clip(c + rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)


_TEX_ATTR = {"plain": 61, "stripes": 72, "checks": 66, "dots": 67, "abstract": 62, "melange": 61,
             "knit": 61, "denim": 46}


def _render_tex(t: _Tex, h: int, w: int, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The texture over the image window ``(y0, y1, x0, x1)`` (default: the whole h×w image)."""
    y0, y1, x0, x1 = window if window is not None else (0, h, 0, w)
    yy, xx = _grid(h, w)
    yy, xx = yy[y0:y1, x0:x1], xx[y0:y1, x0:x1]
    h, w = y1 - y0, x1 - x0
    k = t.kind
    if k == "plain":
        v = None
    elif k in ("stripes", "denim"):
        u = (xx * math.cos(t.angle) + yy * math.sin(t.angle)) / t.period + t.phase
        v = ((u - np.floor(u)) < 0.5).astype(np.float32)
    elif k == "checks":
        u1 = xx / t.period + t.phase
        u2 = yy / t.period + t.phase * 1.7
        v = 0.5 * (((u1 - np.floor(u1)) < 0.5).astype(np.float32) + ((u2 - np.floor(u2)) < 0.5))
    elif k == "dots":
        p = t.period
        row = np.floor(yy / p + t.phase)
        gy = (yy + t.phase * p) % p - p / 2
        gx = (xx + row * p / 2) % p - p / 2
        v = (gx * gx + gy * gy < (0.28 * p) ** 2).astype(np.float32)
    elif k == "knit":
        u = xx / t.period + t.phase
        v = 0.6 * ((u - np.floor(u)) < 0.5).astype(np.float32)
    elif k == "melange":
        v = np.random.default_rng(t.seed).random((h, w), dtype=np.float32) * 0.8
    elif k == "abstract":
        r = np.random.default_rng(t.seed)
        small = (r.random((max(2, h // int(max(t.period * 2, 4))), max(2, w // int(max(t.period * 2, 4)))))
                 * 255).astype(np.uint8)
        big = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR), dtype=np.float32)
        v = (big > 150).astype(np.float32)
    else:
        raise ValueError(f"unknown texture kind {k!r}")
    out = np.empty((h, w, 3), np.float32)
    out[:] = t.c1
    if v is not None:
        out += v[..., None] * (t.c2 - t.c1)
    if k == "denim":
        out *= 1 + 0.12 * (np.random.default_rng(t.seed).random((h, w), dtype=np.float32)[..., None] - 0.5)
    if t.wave:  # soft folds: a low-frequency brightness wave
        fold = 1 + t.wave * np.sin(xx * (0.9 / max(t.period, 2)) * 0.35 + yy * 0.05 + t.phase * 6.28)
        out *= fold[..., None]
    return out


def _garment_tex(rng, kind_weights=None, h_px=30.0, colour=None) -> _Tex:
    kinds = ["plain", "stripes", "checks", "dots", "melange", "abstract", "knit", "denim"]
    weights = np.array(kind_weights if kind_weights is not None else [35, 15, 9, 8, 10, 10, 8, 5], float)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    c1 = colour if colour is not None else _rand_colour(rng)
    if kind == "denim":
        c1 = np.array(colorsys.hsv_to_rgb(rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.7)),
                      np.float32)
    if kind in ("knit", "melange", "denim"):
        c2 = np.clip(c1 * rng.uniform(0.6, 0.85), 0, 1).astype(np.float32)
    elif rng.random() < 0.5:
        c2 = _rand_colour(rng)
    else:
        c2 = _near_colour(rng, c1, 0.35)
    period = {"knit": rng.uniform(1.8, 3.2), "denim": rng.uniform(1.8, 3.0),
              "melange": 1.0}.get(kind, max(2.5, rng.uniform(0.08, 0.4) * h_px))
    return _Tex(kind, c1.astype(np.float32), c2, period=float(period), angle=float(rng.uniform(0, np.pi)),
                phase=float(rng.uniform()), seed=int(rng.integers(2**31)), wave=float(rng.uniform(0.0, 0.12)))


_SKIN = np.array([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
                  (92, 56, 33)], np.float32) / 255
_HAIR = np.array([(20, 15, 12), (60, 40, 25), (110, 75, 45), (200, 165, 90), (150, 60, 30), (170, 170, 170)],
                 np.float32) / 255


# =====================================================================================================
# Scene description: elements (polygons in a person's body frame) painted in order, owned by instances.
# =====================================================================================================
@dataclass
class _Elem:
    polys: list                  # body-frame polygons (N×2)
    inst: int                    # image-level instance index, -1 = nothing annotated (skin, hair, 2nd person)
    tex: int                     # index into the scene's textures
    shade: float = 1.0
    edge: float = 0.82           # brightness of the element's outline pixels
    clip: tuple = ()             # indices (within the same person) of elements this one is clipped to


@dataclass
class _Inst:
    category: int
    attributes: tuple[int, ...]
    parent: int = -1             # for parts: the garment instance


@dataclass
class _Scene:
    rng: np.random.Generator
    h: int
    w: int
    textures: list = field(default_factory=list)
    instances: list = field(default_factory=list)

    def tex(self, t: _Tex) -> int:
        self.textures.append(t)
        return len(self.textures) - 1

    def plain(self, colour) -> int:
        return self.tex(_Tex("plain", np.asarray(colour, np.float32), np.asarray(colour, np.float32), wave=0.0))


class _Person:
    """Builds one person's (or one product's) elements in z-order."""

    def __init__(self, scene: _Scene, annotated: bool, h_px: float, body: _Body | None = None):
        self.sc, self.rng, self.annotated, self.h_px = scene, scene.rng, annotated, h_px
        self.body = body or _Body(scene.rng)
        self.elems: list[_Elem] = []

    # --- bookkeeping -----------------------------------------------------------------------------
    def inst(self, category: int, attributes=(), parent: int = -1) -> int:
        """Register an annotated instance; -1 (nothing annotated) for the unannotated person."""
        if not self.annotated:
            return -1
        self.sc.instances.append(_Inst(int(category), tuple(int(a) for a in attributes), int(parent)))
        return len(self.sc.instances) - 1

    def part(self, category: int, garment: int) -> int:
        return self.inst(category, (), garment) if garment >= 0 else -1

    def add(self, polys, inst, tex, shade=1.0, edge=0.82, clip=()) -> int:
        self.elems.append(_Elem(list(polys), inst, tex, shade, edge, tuple(clip)))
        return len(self.elems) - 1

    def attrs(self, category: int, tex: _Tex, *, length=None, opening=None, fit=None, extra=()) -> tuple:
        """Plausible attribute ids (pattern, length, opening, fit); sometimes none, like many Kaggle rows."""
        rng = self.rng
        if rng.random() < 0.15:
            return ()
        cand = [_TEX_ATTR[tex.kind]]
        if length is not None:
            cand.append(length)
        if opening is not None:
            cand.append(opening)
        if fit is not None:
            cand.append(40 if fit < 0.05 else 41 if fit < 0.12 else 42)
        cand.extend(extra)
        keep = sorted({c for c in cand if rng.random() < 0.8})
        return tuple(keep)

    # --- skin and head -----------------------------------------------------------------------------
    def skin_body(self, skin: int, hair: int, long_hair: bool):
        b = self.body
        if long_hair:
            self.add([np.array([(-0.5, 0.45), (-0.6, 2.1), (0.6, 2.1), (0.5, 0.45)]),
                      _ellipse(0, 0.55, 0.5, 0.6)], -1, hair)
        legs = [p for s in (-1, 1) for p in _chain(b.leg[s], b.skin_r["leg"])]
        feet = [_ellipse(b.leg[s][2][0] + s * 0.1, b.leg[s][2][1] + 0.18, 0.24, 0.14, 10) for s in (-1, 1)]
        self.add(legs + feet, -1, skin, shade=0.96)
        torso = np.array([(-0.17, 1.0), (-b.sw, 1.45), (-(b.sw - 0.12), 2.0), (-b.ww, 3.05), (-b.hw, 3.75),
                          (-b.hw * 0.96, 4.15), (0, 4.25), (b.hw * 0.96, 4.15), (b.hw, 3.75), (b.ww, 3.05),
                          (b.sw - 0.12, 2.0), (b.sw, 1.45), (0.17, 1.0)])
        self.add([torso], -1, skin, shade=0.98)
        self.add([_ellipse(0, 0.52, 0.37, 0.5, 20)], -1, skin)
        # hair cap and a face hint (eyes, mouth) drawn small: they are background anyway
        self.add([np.concatenate([_ellipse(0, 0.42, 0.41, 0.42, 20)[10:], [(0.4, 0.5), (-0.4, 0.5)]])], -1, hair)
        self.add([_ellipse(-0.14, 0.55, 0.05, 0.035, 8), _ellipse(0.14, 0.55, 0.05, 0.035, 8)], -1,
                 self.sc.plain((0.1, 0.08, 0.08)), edge=1.0)
        self.add([np.array([(-0.09, 0.8), (0.09, 0.8), (0.07, 0.83), (-0.07, 0.83)])], -1,
                 self.sc.plain((0.55, 0.25, 0.25)), edge=1.0)

    def arms(self, skin: int):
        b = self.body
        polys = []
        for s in (-1, 1):
            joint, elbow, wrist, hand = b.arm[s]
            r = b.skin_r["arm"]
            polys += _chain([joint, elbow, wrist, hand], [r[0], r[1], r[2], r[3]])
        self.add(polys, -1, skin)

    # --- garments ------------------------------------------------------------------------------------
    def _neck(self, style, nw):
        """Neck opening points from right to left (excluding the shoulder ends)."""
        if style == "v":
            return [(0.0, 1.25 + self.rng.uniform(0.55, 0.95))]
        depth = {"crew": 0.15, "scoop": 0.42, "boat": 0.06, "high": -0.2}[style]
        t = np.linspace(0, np.pi, 9)[1:-1]
        return list(zip(nw * np.cos(t), 1.25 + depth * np.sin(t)))

    def _side(self, s, e, hem, flare=0.0, inset=0.0):
        b = self.body
        pts = [(s * (b.sw + e - inset), 1.42), (s * (b.sw - 0.12 + e - 0.6 * inset), 2.0)]
        for y in list(np.arange(2.4, hem, 0.35)) + [hem]:
            pts.append((s * b.half_width(y, s, e, flare), y))
        return pts

    def _hem(self, hem, e, flare):
        b = self.body
        return _hem_between(-b.half_width(hem, -1, e, flare), b.half_width(hem, 1, e, flare), hem)

    def upper_poly(self, e, hem, neck="crew", nw=0.3, flare=0.0, inset=0.0):
        left, right = self._side(-1, e, hem, flare, inset), self._side(1, e, hem, flare, inset)
        pts = [(-nw, 1.25)] + left + self._hem(hem, e, flare) + right[::-1] + [(nw, 1.25)] + self._neck(neck, nw)
        return np.array(pts)

    def panel_polys(self, e, hem, nw, gap_top, gap_hem, flare=0.0, inset=0.0):
        """The two front panels of an open overtop (left, right)."""
        out = []
        for s in (-1, 1):
            side = self._side(s, e, hem, flare, inset)
            pts = [(s * nw, 1.25)] + side + [(s * gap_hem, hem + 0.04), (s * gap_top, 1.25 + 0.5)]
            out.append(np.array(pts))
        return out

    def sleeves(self, garment, tex, e, frac, bell=0.0, cuff=False):
        b = self.body
        ids = []
        for s in (-1, 1):
            joint, elbow, wrist, _ = b.arm[s]
            polys = _chain([joint, elbow, wrist], [0.27 + e, 0.19 + e, 0.15 + e + bell], frac, cap_end=False)
            ids.append(self.add(polys, self.part(SLEEVE, garment), tex, shade=self.rng.uniform(0.9, 1.02)))
            if cuff and frac > 0.3:
                end = _point_on_chain([joint, elbow, wrist], frac)
                start = _point_on_chain([joint, elbow, wrist], max(frac - 0.09, 0.0))
                self.add([_capsule(start, end, 0.17 + e, 0.16 + e + bell, cap0=False, cap1=False)],
                         self.elems[ids[-1]].inst, tex, shade=0.82, clip=(ids[-1],))
        return ids

    def neckline_part(self, garment, tex, body_elem, style, nw, shade=0.85):
        if style == "v":
            depth = self.rng.uniform(0.5, 0.9)
            band = np.array([(-nw - 0.12, 1.2), (0, 1.25 + depth + 0.16), (nw + 0.12, 1.2), (nw, 1.25),
                             (0, 1.25 + depth), (-nw, 1.25)])
        else:
            t = np.linspace(0, np.pi, 11)
            depth = {"crew": 0.15, "scoop": 0.42, "boat": 0.06, "high": -0.2}[style]
            inner = np.stack([nw * np.cos(t), 1.25 + depth * np.sin(t)], 1)
            outer = np.stack([(nw + 0.11) * np.cos(t), 1.2 + (depth + 0.16) * np.sin(t)], 1)
            band = np.concatenate([outer, inner[::-1]])
        self.add([band], self.part(NECKLINE, garment), tex, shade=shade, clip=(body_elem,))

    def pockets(self, garment, tex, clip, ys=(3.3, 3.7), xs=(0.3, 0.6), size=(0.38, 0.3)):
        for s in (-1, 1):
            if self.rng.random() < 0.15:
                continue
            cx, cy = s * self.rng.uniform(*xs), self.rng.uniform(*ys)
            w, hgt = size
            self.add([np.array([(cx - w / 2, cy), (cx + w / 2, cy), (cx + w / 2, cy + hgt), (cx - w / 2, cy + hgt)])],
                     self.part(POCKET, garment), tex, shade=0.88, clip=clip)

    def buttons(self, garment, clip, y0, y1, x=0.0):
        colour = self.sc.plain(_rand_colour(self.rng, v_range=(0.05, 0.9)))
        n = int(self.rng.integers(3, 7))
        dots = [_ellipse(x, y, 0.045, 0.045, 8) for y in np.linspace(y0, y1, n)]
        self.add(dots, garment, colour, edge=1.0, clip=clip)

    def top(self, category, tex_spec: _Tex, hem, sweater_like=False):
        """Inner upper garment (shirt 0, top 1, sweater 2): body element index and its instance."""
        rng = self.rng
        tex = self.sc.tex(tex_spec)
        e = rng.uniform(0.02, 0.16)
        if category == SHIRT:
            neck, nw = rng.choice(["v", "crew"], p=[0.6, 0.4]), rng.uniform(0.2, 0.3)
            frac = rng.choice([0.38, 0.55, 0.95, 1.0], p=[0.3, 0.1, 0.3, 0.3])
        elif category == SWEATER or sweater_like:
            neck, nw = rng.choice(["crew", "v", "high"], p=[0.55, 0.25, 0.2]), rng.uniform(0.2, 0.3)
            frac = rng.choice([0.38, 0.75, 1.0], p=[0.1, 0.15, 0.75])
        else:
            neck, nw = rng.choice(["crew", "scoop", "v", "boat"], p=[0.45, 0.25, 0.15, 0.15]), rng.uniform(0.22, 0.42)
            frac = rng.choice([0.0, 0.22, 0.38, 0.75, 1.0], p=[0.12, 0.2, 0.35, 0.1, 0.23])
        if neck == "high":
            nw = 0.2
        length = 0 if hem < 3.3 else 1
        opening = 10 if category == SHIRT else 18
        gid = self.inst(category, self.attrs(category, tex_spec, length=length, opening=opening, fit=e))
        inset = 0.3 if frac == 0.0 else 0.0
        body = self.add([self.upper_poly(e, hem, neck, nw, inset=inset)], gid, tex)
        if category == SWEATER or (sweater_like and rng.random() < 0.5):  # rib band at the hem
            y = hem - 0.22
            self.add([np.array([(-3, y), (3, y), (3, hem + 0.2), (-3, hem + 0.2)])], gid, tex, shade=0.85,
                     clip=(body,))
        if category == SHIRT:
            if rng.random() < 0.8:
                collar = [np.array([(s * (nw + 0.08), 1.12), (s * 0.02, 1.38 if neck == "crew" else 1.55),
                                    (s * (nw - 0.02), 1.68), (s * (nw + 0.2), 1.45)]) for s in (-1, 1)]
                self.add(collar, self.part(COLLAR, gid), tex, shade=rng.uniform(0.85, 1.08), edge=0.7)
            self.buttons(gid, (body,), 1.7, hem - 0.2)
            if rng.random() < 0.3:
                s = rng.choice([-1, 1])
                self.add([np.array([(s * 0.25, 2.05), (s * 0.6, 2.05), (s * 0.6, 2.45), (s * 0.25, 2.45)])],
                         self.part(POCKET, gid), tex, shade=0.9, clip=(body,))
        elif rng.random() < 0.7:
            self.neckline_part(gid, tex, body, neck, nw)
        if category == TOP and tex_spec.kind == "plain" and rng.random() < 0.4:  # a print on the chest
            c = self.sc.tex(_garment_tex(rng, h_px=self.h_px))
            cx, cy, r = rng.uniform(-0.2, 0.2), rng.uniform(2.1, 2.6), rng.uniform(0.2, 0.45)
            shape = _ellipse(cx, cy, r, r * rng.uniform(0.6, 1.2), 12) if rng.random() < 0.5 else \
                np.array([(cx - r, cy - r / 2), (cx + r, cy - r / 2), (cx + r, cy + r / 2), (cx - r, cy + r / 2)])
            self.add([shape], gid, c, edge=0.9, clip=(body,))
        return gid, tex, e, frac

    def overtop(self, category, tex_spec: _Tex):
        rng = self.rng
        tex = self.sc.tex(tex_spec)
        e = rng.uniform(0.1, 0.24)
        if category == COAT:
            hem, flare = rng.uniform(5.3, 6.9), rng.uniform(0.04, 0.2)
        elif category == VEST:
            hem, flare = rng.uniform(3.3, 3.95), 0.0
        else:
            hem, flare = rng.uniform(3.5, 4.3), 0.0
        is_open = rng.random() < {VEST: 0.5, COAT: 0.45, CARDIGAN: 0.7, JACKET: 0.65, SWEATER: 0.0}[category]
        zip_up = (not is_open) and category in (JACKET, COAT) and rng.random() < 0.5
        inset = 0.25 if category == VEST else 0.0
        nw = rng.uniform(0.22, 0.34)
        length = _length_attr(hem) if category == COAT else (0 if hem < 3.3 else 1)
        opening = 14 if zip_up else (10 if is_open or category != SWEATER else 18)
        gid = self.inst(category, self.attrs(category, tex_spec, length=length, opening=opening, fit=e - 0.1))
        if is_open:
            gap_top, gap_hem = rng.uniform(0.05, 0.3), rng.uniform(0.15, 0.7)
            left, right = self.panel_polys(e, hem, nw, gap_top, gap_hem, flare, inset)
            shade = rng.uniform(0.93, 1.0)
            body = (self.add([left], gid, tex, shade=shade), self.add([right], gid, tex, shade=shade * 0.97))
            if category in (JACKET, COAT) and rng.random() < 0.8:
                for s, el in zip((-1, 1), body):
                    lapel = np.array([(s * nw, 1.22), (s * (nw + 0.3), 1.6), (s * (gap_top + 0.12), 2.3),
                                      (s * gap_top, 1.75)])
                    self.add([lapel], self.part(LAPEL, gid), tex, shade=0.8, edge=0.7, clip=(el,))
        else:
            neck = "high" if zip_up else ("v" if category in (CARDIGAN, JACKET) else "crew")
            body = (self.add([self.upper_poly(e, hem, neck, 0.2 if neck == "high" else nw, flare, inset)],
                             gid, tex),)
            if zip_up:
                self.add([np.array([(-0.035, 0.9), (0.035, 0.9), (0.035, hem + 0.1), (-0.035, hem + 0.1)])],
                         self.part(ZIPPER, gid), self.sc.plain(_rand_colour(rng, (0, 0.2), (0.3, 0.9))),
                         edge=1.0, clip=body)
            else:
                self.buttons(gid, body, 2.2, hem - 0.3)
                if category == CARDIGAN and rng.random() < 0.6:
                    self.neckline_part(gid, tex, body[0], "v", nw)
        if category in (JACKET, COAT) and rng.random() < 0.6:
            self.pockets(gid, tex, body, ys=(min(3.2, hem - 0.6), min(3.9, hem - 0.4)))
        frac = 0.0 if category == VEST else rng.choice([0.75, 0.95, 1.0], p=[0.15, 0.25, 0.6])
        return gid, tex, e, frac

    def lower(self, category, tex_spec: _Tex, waist=None):
        """Pants 6, shorts 7, skirt 8: one element (plus parts); returns the instance."""
        rng, b = self.rng, self.body
        tex = self.sc.tex(tex_spec)
        yw = waist if waist is not None else rng.uniform(2.95, 3.3)
        if category == SKIRT:
            e = rng.uniform(0.03, 0.12)
            hem = rng.choice([rng.uniform(4.4, 5.0), rng.uniform(5.2, 6.0), rng.uniform(6.1, 7.6)], p=[0.35, 0.4, 0.25])
            flare = rng.choice([0.0, rng.uniform(0.1, 0.45)], p=[0.35, 0.65])
            gid = self.inst(SKIRT, self.attrs(SKIRT, tex_spec, length=_length_attr(hem),
                                              extra=[34 if flare > 0.2 else 32]))
            left = [(-b.half_width(y, -1, e, flare, yw), y) for y in list(np.arange(yw, hem, 0.35)) + [hem]]
            right = [(b.half_width(y, 1, e, flare, yw), y) for y in list(np.arange(yw, hem, 0.35)) + [hem]]
            el = self.add([np.array(left + _hem_between(left[-1][0], right[-1][0], hem) + right[::-1])], gid, tex)
            return gid, (el,)
        e = rng.uniform(0.02, 0.14)
        if category == PANTS:
            frac = rng.choice([1.0, rng.uniform(0.8, 0.95)], p=[0.75, 0.25])
            wide = rng.choice([0.0, rng.uniform(0.06, 0.2)], p=[0.7, 0.3])
            sil = 37 if wide > 0.1 else (40 if e < 0.05 else 33)
            gid = self.inst(PANTS, self.attrs(PANTS, tex_spec, extra=[sil]))
        else:
            frac, wide = rng.uniform(0.12, 0.45), rng.uniform(0.0, 0.08)
            gid = self.inst(SHORTS, self.attrs(SHORTS, tex_spec, fit=e))
        waist = np.array([(-b.half_width(yw, -1, e), yw), (b.half_width(yw, 1, e), yw),
                          (b.half_width(3.75, 1, e), 3.75), (b.hw * 0.96 + e, 4.15), (0, 4.3),
                          (-(b.hw * 0.96 + e), 4.15), (-b.half_width(3.75, -1, e), 3.75)])
        legs = [p for s in (-1, 1) for p in _chain(b.leg[s], [0.4 + e, 0.28 + e, 0.18 + e + wide], frac,
                                                          cap_end=False)]
        el = self.add([waist] + legs, gid, tex)
        if rng.random() < 0.35:
            self.pockets(gid, tex, (el,), ys=(yw + 0.2, yw + 0.35), xs=(0.35, 0.55), size=(0.3, 0.25))
        if rng.random() < 0.15:
            self.add([np.array([(-0.03, yw + 0.1), (0.03, yw + 0.1), (0.03, 4.0), (-0.03, 4.0)])],
                     self.part(ZIPPER, gid), self.sc.plain((0.6, 0.6, 0.55)), edge=1.0, clip=(el,))
        return gid, (el,)

    def dress(self, tex_spec: _Tex, jumpsuit=False):
        """Dress 10 (one polygon neck to hem) or jumpsuit 11 (bodice + trouser legs)."""
        rng, b = self.rng, self.body
        tex = self.sc.tex(tex_spec)
        e = rng.uniform(0.02, 0.12)
        neck, nw = rng.choice(["crew", "scoop", "v", "boat"]), rng.uniform(0.22, 0.42)
        sleeveless = rng.random() < 0.4
        inset = 0.3 if sleeveless else 0.0
        if jumpsuit:
            gid = self.inst(JUMPSUIT, self.attrs(JUMPSUIT, tex_spec, fit=e))
            bodice = self.upper_poly(e, 3.9, neck, nw, inset=inset)
            legs = [p for s in (-1, 1) for p in _chain(b.leg[s], [0.4 + e, 0.28 + e, 0.2 + e],
                                                          rng.uniform(0.7, 1.0), cap_end=False)]
            body = self.add([bodice] + legs, gid, tex)
        else:
            hem = rng.choice([rng.uniform(4.4, 5.0), rng.uniform(5.2, 6.2), rng.uniform(6.3, 7.7)], p=[0.3, 0.45, 0.25])
            flare = rng.choice([0.0, rng.uniform(0.1, 0.45)], p=[0.3, 0.7])
            gid = self.inst(DRESS, self.attrs(DRESS, tex_spec, length=_length_attr(hem), fit=e,
                                              extra=[88 if rng.random() < 0.7 else 91]))
            # like an upper garment, but flared from the waist down
            left = [(-(b.sw + e - inset), 1.42), (-(b.sw - 0.12 + e - 0.6 * inset), 2.0)] + \
                [(-b.half_width(y, -1, e, flare, 3.1), y) for y in list(np.arange(2.4, hem, 0.35)) + [hem]]
            right = [(-x, y) for x, y in left[:2]] + \
                [(b.half_width(y, 1, e, flare, 3.1), y) for y in list(np.arange(2.4, hem, 0.35)) + [hem]]
            poly = np.array([(-nw, 1.25)] + left + _hem_between(left[-1][0], right[-1][0], hem) + right[::-1]
                            + [(nw, 1.25)] + self._neck(neck, nw))
            body = self.add([poly], gid, tex)
            if rng.random() < 0.3:  # a waist seam: a faint cue that tells a dress from a top + skirt
                self.add([np.array([(-3, 3.05), (3, 3.05), (3, 3.11), (-3, 3.11)])], gid, tex, shade=0.8,
                         clip=(body,))
        if rng.random() < 0.6:
            self.neckline_part(gid, tex, body, neck, nw)
        frac = 0.0 if sleeveless else rng.choice([0.22, 0.38, 0.75, 1.0], p=[0.3, 0.3, 0.15, 0.25])
        return gid, tex, e, frac

    def shoes(self):
        rng, b = self.rng, self.body
        tex_spec = _garment_tex(rng, [50, 5, 2, 3, 5, 3, 0, 2], self.h_px,
                                colour=_rand_colour(rng, v_range=(0.05, 0.95)))
        tex = self.sc.tex(tex_spec)
        boots = rng.random() < 0.2
        for s in (-1, 1):
            hip, knee, ankle = b.leg[s]
            polys = [_ellipse(ankle[0] + s * 0.12, ankle[1] + 0.2, rng.uniform(0.26, 0.32), 0.17, 12),
                     _capsule(ankle - (0, 0.05), ankle + (s * 0.1, 0.18), 0.18, 0.16)]
            if boots:
                top = ankle + rng.uniform(0.3, 0.8) * (knee - ankle)
                polys.append(_capsule(top, ankle + (0, 0.1), 0.23, 0.2, cap0=False))
            gid = self.inst(SHOE, self.attrs(SHOE, tex_spec) if rng.random() < 0.3 else ())
            self.add(polys, gid, tex, shade=0.97 if s < 0 else 1.0)

    def bag(self):
        rng, b = self.rng, self.body
        tex_spec = _garment_tex(rng, [50, 8, 6, 4, 5, 5, 0, 3], self.h_px)
        tex = self.sc.tex(tex_spec)
        gid = self.inst(BAG, self.attrs(BAG, tex_spec) if rng.random() < 0.4 else ())
        style = rng.choice(["hand", "shoulder", "cross", "clutch"], p=[0.3, 0.3, 0.25, 0.15])
        s = int(rng.choice([-1, 1]))
        strap_r = rng.uniform(0.035, 0.06)
        if style in ("hand", "clutch"):
            hand = b.arm[s][3]
            w, hgt = (rng.uniform(0.6, 1.0), rng.uniform(0.5, 0.8)) if style == "hand" else \
                (rng.uniform(0.5, 0.8), rng.uniform(0.25, 0.4))
            top = hand[1] + (0.35 if style == "hand" else -0.1)
            cx = hand[0]
        else:
            w, hgt = rng.uniform(0.6, 0.95), rng.uniform(0.45, 0.75)
            cx, top = s * (b.hw + rng.uniform(0.05, 0.3)), rng.uniform(3.3, 3.9)
        body = np.array([(cx - w / 2, top), (cx + w / 2, top), (cx + w / 2 + 0.06, top + hgt),
                         (cx - w / 2 - 0.06, top + hgt)])
        polys = [body]
        if style == "hand":
            hand = b.arm[s][3]
            polys += [_capsule((cx - w / 3, top), hand, strap_r, strap_r), _capsule(hand, (cx + w / 3, top),
                                                                                    strap_r, strap_r)]
        elif style == "shoulder":
            sh = np.array([s * (b.sw - 0.3), 1.4])
            polys += [_capsule(sh, (cx - s * w / 3, top), strap_r, strap_r)]
        elif style == "cross":
            sh = np.array([-s * (b.sw - 0.35), 1.4])
            polys += [_capsule(sh, (cx - s * w / 3, top), strap_r, strap_r)]
        self.add(polys, gid, tex)
        if rng.random() < 0.4:  # flap
            self.add([np.array([(cx - w / 2, top), (cx + w / 2, top), (cx, top + hgt * 0.55)])], gid, tex,
                     shade=0.85, clip=(len(self.elems) - 1,))

    # --- non-garment items (background classes) -------------------------------------------------------
    def hat(self):
        rng = self.rng
        tex = self.sc.tex(_garment_tex(rng, [60, 10, 5, 5, 10, 5, 5, 0], self.h_px))
        iid = self.inst(HAT)
        if rng.random() < 0.5:  # brimmed
            self.add([_ellipse(0, 0.28, rng.uniform(0.55, 0.8), 0.09, 16),
                      np.array([(-0.36, 0.3), (-0.3, -0.2), (0.3, -0.2), (0.36, 0.3)])], iid, tex)
        else:  # beanie
            self.add([np.concatenate([_ellipse(0, 0.38, 0.42, 0.45, 20)[10:], [(0.42, 0.42), (-0.42, 0.42)]])],
                     iid, tex)

    def glasses(self):
        tex = self.sc.plain(_rand_colour(self.rng, v_range=(0.02, 0.4)))
        self.add([_ellipse(-0.15, 0.55, 0.12, 0.08, 10), _ellipse(0.15, 0.55, 0.12, 0.08, 10),
                  np.array([(-0.05, 0.53), (0.05, 0.53), (0.05, 0.56), (-0.05, 0.56)])], self.inst(GLASSES), tex,
                 edge=1.0)

    def belt(self, y, e):
        b = self.body
        tex = self.sc.plain(_rand_colour(self.rng, v_range=(0.05, 0.6)))
        iid = self.inst(BELT)
        xl, xr = b.half_width(y, -1, e) + 0.03, b.half_width(y, 1, e) + 0.03
        self.add([np.array([(-xl, y - 0.02), (xr, y - 0.02), (xr, y + 0.15), (-xl, y + 0.15)])], iid, tex)
        self.add([np.array([(-0.1, y - 0.04), (0.1, y - 0.04), (0.1, y + 0.17), (-0.1, y + 0.17)])], iid,
                 self.sc.plain((0.75, 0.7, 0.5)), edge=0.7)

    def scarf(self):
        rng = self.rng
        tex = self.sc.tex(_garment_tex(rng, [30, 20, 15, 5, 10, 10, 10, 0], self.h_px))
        end_y = rng.uniform(2.2, 3.4)
        x = rng.uniform(-0.25, 0.25)
        self.add([np.array([(-0.38, 1.05), (0.38, 1.05), (0.42, 1.45), (-0.42, 1.45)]),
                  _capsule((x, 1.3), (x + rng.uniform(-0.1, 0.1), end_y), 0.15, 0.17)], self.inst(SCARF), tex)

    def tights(self):
        b = self.body
        tex = self.sc.plain(_rand_colour(self.rng, (0, 0.4), (0.03, 0.5)))
        polys = [p for s in (-1, 1) for p in _chain(b.leg[s], [0.38, 0.27, 0.17])]
        self.add(polys, self.inst(TIGHTS), tex, edge=0.9)

    def watch(self):
        s = int(self.rng.choice([-1, 1]))
        joint, elbow, wrist, hand = self.body.arm[s]
        p = wrist + 0.05 * (elbow - wrist)
        self.add([_capsule(p - 0.08 * (elbow - wrist), p + 0.08 * (elbow - wrist), 0.15, 0.15)],
                 self.inst(WATCH), self.sc.plain(_rand_colour(self.rng)), edge=0.8)

    # --- a whole outfit --------------------------------------------------------------------------------
    def dress_up(self, kind: str):
        """Draw a person wearing a random outfit; ``kind`` is "person" or "jumpsuit"."""
        rng = self.rng
        skin = self.sc.plain(np.clip(_SKIN[rng.integers(len(_SKIN))] + rng.uniform(-0.04, 0.04, 3), 0, 1))
        hair = self.sc.tex(_Tex("melange", _HAIR[rng.integers(len(_HAIR))],
                                _HAIR[rng.integers(len(_HAIR))] * 0.7, seed=int(rng.integers(2**31)), wave=0.0))
        self.skin_body(skin, hair, long_hair=rng.random() < 0.45)
        # lower / whole-body choice
        if kind == "jumpsuit":
            whole = "jumpsuit"
        else:
            whole = rng.choice(["dress", "pants", "skirt", "shorts"], p=[0.28, 0.37, 0.22, 0.13])
        if whole in ("dress", "skirt", "shorts") and rng.random() < 0.3:
            self.tights()
        if rng.random() < 0.9:
            self.shoes()
        inner = None
        layers: list[tuple[int, int, float, float]] = []   # (instance, texture, looseness, sleeve length)
        if whole in ("dress", "jumpsuit"):
            layers.append(self.dress(_garment_tex(rng, h_px=self.h_px), jumpsuit=whole == "jumpsuit"))
            lower_y, lower_e = 3.05, layers[-1][2]
        else:
            inner = rng.choice([TOP, SHIRT, SWEATER], p=[0.5, 0.3, 0.2])
            # t-shirt vs sweater of the same cut: told apart only by tendencies (see module docstring)
            if inner == SWEATER:
                spec = _garment_tex(rng, [30, 12, 5, 3, 15, 5, 30, 0], self.h_px)
            elif inner == TOP:
                spec = _garment_tex(rng, [35, 15, 8, 8, 12, 12, 8, 2], self.h_px)
            else:
                spec = _garment_tex(rng, [40, 25, 20, 8, 2, 5, 0, 0], self.h_px)
            lower_spec = _garment_tex(rng, [30, 8, 8, 3, 8, 4, 2, 37 if whole != "skirt" else 3], self.h_px)
            two_piece = whole == "skirt" and rng.random() < 0.35
            if two_piece:  # the dress look-alike: same colour and texture, a faint shade/phase difference
                c1 = np.clip(spec.c1 * rng.uniform(0.94, 1.06), 0, 1).astype(np.float32)
                phase = float(rng.uniform()) if rng.random() < 0.5 else spec.phase
                lower_spec = _Tex(spec.kind, c1, spec.c2, spec.period, spec.angle, phase, spec.seed, spec.wave)
            tucked = rng.random() < (0.6 if two_piece else 0.35)
            waist = rng.uniform(2.95, 3.3)
            hem = rng.uniform(2.75, 3.0) if rng.random() < 0.12 else \
                (waist + rng.uniform(0.1, 0.3) if tucked else rng.uniform(3.3, 4.0))
            if two_piece and not tucked:
                hem = waist + rng.uniform(0.1, 0.3)
            if not tucked:
                self.lower({"pants": PANTS, "skirt": SKIRT, "shorts": SHORTS}[whole], lower_spec,
                                         waist)
            layers.append(self.top(inner, spec, hem, sweater_like=inner == TOP and rng.random() < 0.25))
            if tucked:
                self.lower({"pants": PANTS, "skirt": SKIRT, "shorts": SHORTS}[whole], lower_spec,
                                         waist)
            lower_y, lower_e = waist, 0.08
        if rng.random() < 0.2:
            self.belt(lower_y, lower_e)
        if rng.random() < 0.42:
            cat = rng.choice([JACKET, CARDIGAN, COAT, VEST], p=[0.38, 0.25, 0.2, 0.17])
            spec = _garment_tex(rng, [40, 8, 10, 3, 10, 4, 20 if cat == CARDIGAN else 3, 10 if cat == JACKET else 0],
                                self.h_px)
            layers.append(self.overtop(cat, spec))
        self.arms(skin)
        sleeve_e = -1.0
        for gid, tex, e, frac in layers:
            # an outer sleeve must cover the inner one at the shoulder, or the inner would show on top of it
            sleeve_e = max(e, sleeve_e + 0.03)
            if frac > 0:
                knit = gid >= 0 and self.sc.instances[gid].category in (SWEATER, CARDIGAN)
                self.sleeves(gid, tex, sleeve_e, frac, cuff=knit or (gid < 0 and rng.random() < 0.3),
                             bell=rng.uniform(0, 0.1) if rng.random() < 0.2 else 0.0)
        if rng.random() < 0.15:
            self.watch()
        if rng.random() < 0.35:
            self.bag()
        if rng.random() < 0.1:
            self.scarf()
        if rng.random() < 0.15:
            self.hat()
        if rng.random() < 0.2:
            self.glasses()

    def product(self):
        """A product shot: one garment (or a pair of shoes, or a bag), no person."""
        rng = self.rng
        cat = rng.choice([SHIRT, TOP, SWEATER, CARDIGAN, JACKET, VEST, COAT, DRESS, SKIRT, PANTS, SHORTS, SHOE, BAG],
                         p=np.array([8, 12, 8, 5, 8, 3, 5, 12, 8, 10, 5, 8, 8]) / 100)
        spec = _garment_tex(rng, h_px=self.h_px)
        if cat in (SHIRT, TOP, SWEATER):
            gid, tex, e, frac = self.top(cat, spec, rng.uniform(3.3, 4.0))
            if frac > 0:
                self.sleeves(gid, tex, e, frac, cuff=cat == SWEATER)
        elif cat in (CARDIGAN, JACKET, VEST, COAT):
            gid, tex, e, frac = self.overtop(cat, spec)
            if frac > 0:
                self.sleeves(gid, tex, e, frac, cuff=cat == CARDIGAN)
        elif cat == DRESS:
            gid, tex, e, frac = self.dress(spec)
            if frac > 0:
                self.sleeves(gid, tex, e, frac)
        elif cat in (SKIRT, PANTS, SHORTS):
            self.lower(cat, spec)
        elif cat == SHOE:
            self.shoes()
        else:
            self.bag()
        return cat


def _length_attr(hem: float) -> int:
    for limit, attr in ((4.6, 3), (5.2, 4), (5.9, 5), (6.4, 6), (7.0, 7), (7.5, 8)):
        if hem < limit:
            return attr
    return 9


# =====================================================================================================
# Rasterising and painting
# =====================================================================================================
class _Placement(NamedTuple):
    a: np.ndarray   # 2×2
    t: np.ndarray   # 2


def _placement(scale, x_c, y_top, lean=0.0, mirror=1):
    c, s = math.cos(lean), math.sin(lean)
    rot = np.array([[c, -s], [s, c]])
    pivot = np.array([0.0, _FULL_HEIGHT])
    flip = np.diag([float(mirror), 1.0])
    a = scale * flip @ rot
    t = scale * flip @ (pivot - rot @ pivot) + np.array([x_c, y_top])
    return _Placement(a, t)


def _to_px(poly, pl: _Placement):
    return poly @ pl.a.T + pl.t


def _bbox_of(elems, pl):
    pts = np.concatenate([_to_px(p, pl) for e in elems for p in e.polys])
    return pts.min(0), pts.max(0)


def _rasterise(elems, pl, h, w):
    """Full-size boolean masks of the elements and their pixel windows ``(y0, y1, x0, x1)`` (None if off-image)."""
    masks, windows = [], []
    for e in elems:
        qs = [_to_px(p, pl) for p in e.polys]
        pts = np.concatenate(qs)
        lo, hi = pts.min(0), pts.max(0)
        x0, y0 = max(int(math.floor(lo[0])) - 1, 0), max(int(math.floor(lo[1])) - 1, 0)
        x1, y1 = min(int(math.ceil(hi[0])) + 2, w), min(int(math.ceil(hi[1])) + 2, h)
        m = np.zeros((h, w), bool)
        if x0 >= x1 or y0 >= y1:
            masks.append(m)
            windows.append(None)
            continue
        img = Image.new("L", (x1 - x0, y1 - y0), 0)
        draw = ImageDraw.Draw(img)
        for q in qs:
            draw.polygon((q - (x0, y0)).ravel().tolist(), fill=1)
        sub = np.asarray(img, dtype=bool)
        if e.clip:
            clip = np.zeros_like(sub)
            for c in e.clip:
                clip |= masks[c][y0:y1, x0:x1]
            sub = sub & clip
        m[y0:y1, x0:x1] = sub
        masks.append(m)
        windows.append((y0, y1, x0, x1))
    return masks, windows


def _outline(m):
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def _background(rng, h, w, product):
    yy, xx = _grid(h, w)
    if product:
        c1 = np.full(3, rng.uniform(0.82, 1.0), np.float32) * _near_colour(rng, np.ones(3, np.float32), 0.06)
        c2 = np.clip(c1 * rng.uniform(0.88, 1.0), 0, 1)
    else:
        c1, c2 = _rand_colour(rng, (0, 0.6)), _rand_colour(rng, (0, 0.6))
    a = rng.uniform(0, 2 * np.pi)
    u = (xx * math.cos(a) + yy * math.sin(a))
    u = (u - u.min()) / max(float(u.max() - u.min()), 1.0)
    out = c1 + u[..., None] * (c2 - c1)
    if product:
        return out.astype(np.float32)
    img = Image.fromarray((out * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.5:  # floor
        y = rng.uniform(0.6, 0.9) * h
        draw.polygon([(0, y), (w, y + rng.uniform(-0.05, 0.05) * h), (w, h), (0, h)],
                     fill=tuple(int(v) for v in _rand_colour(rng, (0, 0.5)) * 255))
    for _ in range(int(rng.integers(3, 15))):
        col = tuple(int(v) for v in _rand_colour(rng) * 255)
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.6) * w, y0 + rng.uniform(0.05, 0.6) * h
        shape = rng.integers(3)
        if shape == 0:
            draw.rectangle([x0, y0, x1, y1], fill=col)
        elif shape == 1:
            draw.ellipse([x0, y0, x1, y1], fill=col)
        else:
            pts = np.stack([rng.uniform(x0, x1, 5), rng.uniform(y0, y1, 5)], 1)
            draw.polygon(pts.ravel().tolist(), fill=col)
    out = np.asarray(img, dtype=np.float32) / 255
    for _ in range(int(rng.integers(0, 3))):  # textured patches (curtains, posters)
        spec = _garment_tex(rng, [0, 40, 30, 15, 0, 15, 0, 0], h_px=h / 8)
        x0, y0 = int(rng.uniform(0, 0.8) * w), int(rng.uniform(0, 0.8) * h)
        x1 = min(x0 + max(int(rng.uniform(0.1, 0.5) * w), 1), w)
        y1 = min(y0 + max(int(rng.uniform(0.1, 0.5) * h), 1), h)
        out[y0:y1, x0:x1] = _render_tex(spec, h, w, (y0, y1, x0, x1))
    return out


def _reader_rule(masks, classes, shape):
    """The reader's merge of garment instances: fewer pixels on top; ties: the earlier one on top."""
    out = np.zeros(shape, np.uint8)
    areas = [int(m.sum()) for m in masks]
    for i in sorted(range(len(masks)), key=lambda i: (-areas[i], -i)):
        out[masks[i]] = classes[i]
    return out


def _consistent(masks, classes, target):
    areas = [int(m.sum()) for m in masks]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if areas[i] == areas[j] and classes[i] != classes[j] and (masks[i] & masks[j]).any():
                return False
    return bool((_reader_rule(masks, classes, target.shape) == target).all())


def _scene_kind(seed, index, product_share, jumpsuit_share, second_person_share):
    """Low-discrepancy (Weyl) sequences: shares stay close to the requested ones for any number of images."""
    o1 = (seed * 0.7548776662466927 + 0.1) % 1.0
    o2 = (seed * 0.5698402909980532 + 0.3) % 1.0
    u1 = (o1 + index * 0.6180339887498949) % 1.0
    u2 = (o2 + index * 0.41421356237309515) % 1.0
    if u1 < product_share:
        return "product", False
    kind = "jumpsuit" if u1 < product_share + jumpsuit_share else "person"
    p2 = second_person_share / max(1.0 - product_share, 1e-9)
    return kind, u2 < p2


def draw_image(seed: int, index: int, *, height: int = 288, width: int = 192, second_person_share: float = 0.25,
               jumpsuit_share: float = 0.03, product_share: float = 0.05) -> SyntheticImage:
    """Draw image ``index`` of the dataset of ``seed`` (see the module docstring for what it guarantees)."""
    h, w = int(height), int(width)
    if h < 16 or w < 16:
        raise ValueError(f"image size must be at least 16×16, got {h}×{w}")
    kind, second = _scene_kind(seed, index, product_share, jumpsuit_share, second_person_share)
    rng = np.random.default_rng([int(seed), int(index), 0x5EED])
    scene = _Scene(rng, h, w)
    people: list[tuple[_Person, _Placement, bool]] = []   # in paint order (back to front)
    if kind == "product":
        p = _Person(scene, True, h_px=h / 6, body=_Body(rng, pose=False))
        p.product()
        lo, hi = _bbox_of(p.elems, _placement(1.0, 0.0, 0.0))
        span = np.maximum(hi - lo, 1e-3)
        scale = min(rng.uniform(0.65, 0.9) * h / span[1], rng.uniform(0.65, 0.9) * w / span[0])
        centre = np.array([w, h]) / 2 + rng.uniform(-0.06, 0.06, 2) * [w, h]
        pl = _placement(scale, *(centre - scale * (lo + hi) / 2))
        people.append((p, pl, True))
    else:
        framing = rng.choice(["full", "close", "small"], p=[0.7, 0.2, 0.1])
        heights = {"full": rng.uniform(0.72, 0.96), "close": rng.uniform(1.0, 1.45), "small": rng.uniform(0.45, 0.7)}
        hp = heights[framing] * h
        scale = hp / _FULL_HEIGHT
        y_top = rng.uniform(0.01, 0.04) * h if framing != "full" else rng.uniform(0.0, max(h - hp, 1.0))
        x_c = rng.uniform(0.3, 0.7) * w
        lean1, mirror1 = rng.uniform(-0.08, 0.08), int(rng.choice([-1, 1]))
        p1 = _Person(scene, True, h_px=scale)
        p1.dress_up(kind)
        if second:
            # make room: the annotated person takes at most about 60 % of the width, on one side
            lo, hi = _bbox_of(p1.elems, _placement(scale, 0.0, y_top, lean1, mirror1))
            room = rng.uniform(0.5, 0.65) * w
            if hi[0] - lo[0] > room:
                scale *= room / (hi[0] - lo[0])
                lo, hi = _bbox_of(p1.elems, _placement(scale, 0.0, y_top, lean1, mirror1))
            on_right = bool(rng.random() < 0.5)
            margin = rng.uniform(-0.04, 0.06) * w
            x_c = (w - margin - hi[0]) if on_right else (margin - lo[0])
        pl1 = _placement(scale, x_c, y_top, lean1, mirror1)
        if second:
            lo1, hi1 = _bbox_of(p1.elems, pl1)
            p2 = _Person(scene, False, h_px=scale)
            p2.dress_up("person")
            best = None
            for attempt in range(16):  # place the unannotated person beside the first, barely overlapping it
                s2 = scale * rng.uniform(0.45, 1.05) * (1 - attempt / 24)
                y2 = rng.uniform(-0.05, 0.35) * h
                lean, mirror = rng.uniform(-0.08, 0.08), int(rng.choice([-1, 1]))
                pl0 = _placement(s2, 0.0, y2, lean, mirror)
                lo2, hi2 = _bbox_of(p2.elems, pl0)
                width2 = hi2[0] - lo2[0]
                gap = rng.uniform(-0.08, 0.1) * width2
                if on_right:   # first person on the right → second on the left
                    dx = lo1[0] - gap - hi2[0]
                else:
                    dx = hi1[0] + gap - lo2[0]
                vis = (min(hi2[0] + dx, w) - max(lo2[0] + dx, 0)) * (min(hi2[1], h) - max(lo2[1], 0))
                frac = vis / max((hi2[0] - lo2[0]) * (hi2[1] - lo2[1]), 1e-9)
                overlap = max(0.0, min(hi1[0], hi2[0] + dx) - max(lo1[0], lo2[0] + dx)) / max(width2, 1e-9)
                score = (frac >= 0.4, -overlap)
                if best is None or score > best[0]:
                    best = (score, _placement(s2, dx, y2, lean, mirror), frac)
                if frac >= 0.4 and overlap <= 0.1:
                    break
            if best[2] < 0.4:   # no try was visible enough: a small person inside the image, on the free side
                s2 = scale * 0.45
                lo2, hi2 = _bbox_of(p2.elems, _placement(s2, 0.0, 0.1 * h))
                dx = -lo2[0] if on_right else w - hi2[0]
                best = (None, _placement(s2, dx, 0.1 * h), 1.0)
            people.append((p2, best[1], False))
        people.append((p1, pl1, True))

    # rasterise, then paint back to front, recording which element owns each pixel
    canvas = _background(rng, h, w, kind == "product")
    owner = np.full((h, w), -1, np.int32)
    all_masks, elem_inst, person_boxes = [], [], []
    for person, pl, annotated in people:
        masks, windows = _rasterise(person.elems, pl, h, w)
        # each texture is rendered once, over the union of the windows of the elements that use it
        tex_window: dict[int, list[int]] = {}
        for e, win in zip(person.elems, windows):
            if win is not None:
                tw = tex_window.setdefault(e.tex, list(win))
                tw[:] = [min(tw[0], win[0]), max(tw[1], win[1]), min(tw[2], win[2]), max(tw[3], win[3])]
        rendered: dict[int, np.ndarray] = {}
        union = np.zeros((h, w), bool)
        for e, m, win in zip(person.elems, masks, windows):
            if win is None:
                continue
            y0, y1, x0, x1 = win
            sub = m[y0:y1, x0:x1]
            if not sub.any():
                continue
            union[y0:y1, x0:x1] |= sub
            spec = scene.textures[e.tex]
            region = canvas[y0:y1, x0:x1]
            if spec.kind == "plain" and not spec.wave:
                region[sub] = spec.c1 * e.shade
            else:
                if e.tex not in rendered:
                    rendered[e.tex] = _render_tex(spec, h, w, tuple(tex_window[e.tex]))
                ty0, _, tx0, _ = tex_window[e.tex]
                region[sub] = rendered[e.tex][y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0][sub] * e.shade
            if e.edge != 1.0:
                region[_outline(sub)] *= e.edge
            owner[y0:y1, x0:x1][sub] = len(all_masks)
            all_masks.append(m)
            elem_inst.append(e.inst)
        if kind != "product" and union.any():
            rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
            person_boxes.append((0 if annotated else 1, int(cols[0]), int(rows[0]), int(cols[-1]) + 1,
                                 int(rows[-1]) + 1, annotated))
    person_boxes.sort()
    persons = [PersonBox(*b) for b in person_boxes]

    # instances: visible pixels, then extend garments under other garments where the reader rule stays exact
    insts = scene.instances
    merge = _merge()
    n = len(insts)
    root = np.array([i if insts[i].parent < 0 else insts[i].parent for i in range(n)] + [-1], np.int64)
    inst_of_elem = np.array(elem_inst + [-1], np.int64)
    owner_inst = inst_of_elem[owner]                  # owner == -1 picks the trailing -1
    owner_root = root[owner_inst]
    is_garment = [insts[i].parent < 0 and merge[insts[i].category] > 0 for i in range(n)]
    cls_of_root = np.array([merge[insts[i].category] if is_garment[i] else 0 for i in range(n)] + [0], np.uint8)
    visible_cls = cls_of_root[owner_root]
    full = [np.zeros((h, w), bool) for _ in range(n)]
    for m, i in zip(all_masks, elem_inst):
        if i >= 0:
            full[root[i]] |= m
    garments = [i for i in range(n) if is_garment[i]]
    vis = {g: owner_root == g for g in garments}
    garments = [g for g in garments if vis[g].any()]          # fully hidden garments are not written
    masks = {g: vis[g] for g in garments}
    if len(garments) > 1:
        # all garment pixels lie in the union of their full shapes: work on that window only
        union = np.zeros((h, w), bool)
        for g in garments:
            union |= full[g]
        rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
        win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        target = visible_cls[win]
        full_w = {g: full[g][win] for g in garments}
        vis_w = {g: vis[g][win] for g in garments}
        masks_w = dict(vis_w)
        classes = [int(cls_of_root[g]) for g in garments]
        for g in sorted(garments, key=lambda g: -int(full_w[g].sum())):
            for k in garments:
                if k == g:
                    continue
                add = full_w[g] & vis_w[k] & ~masks_w[g]
                if not add.any():
                    continue
                trial = dict(masks_w)
                trial[g] = masks_w[g] | add
                if _consistent([trial[x] for x in garments], classes, target):
                    masks_w = trial
        for g in garments:
            if masks_w[g] is not vis_w[g]:
                masks[g] = np.zeros((h, w), bool)
                masks[g][win] = masks_w[g]
    out_instances = []
    for i, inst in enumerate(insts):
        if is_garment[i]:
            if i not in masks:
                continue
            m = masks[i]
        else:
            m = owner_inst == i
            if insts[i].parent >= 0 and insts[i].parent not in masks:
                continue
        if m.any():
            out_instances.append(Instance(inst.category, inst.attributes, m))
    order = rng.permutation(len(out_instances))         # real CSV rows come in no particular order
    out_instances = [out_instances[i] for i in order]

    # camera: slight blur (a 3×3 binomial filter, partly mixed in), then sensor noise; the mask keeps the hard
    # edges of the drawing
    if rng.random() < 0.6:
        soft = canvas.copy()
        soft[1:-1] = 0.25 * (canvas[:-2] + canvas[2:]) + 0.5 * canvas[1:-1]
        soft2 = soft.copy()
        soft2[:, 1:-1] = 0.25 * (soft[:, :-2] + soft[:, 2:]) + 0.5 * soft[:, 1:-1]
        canvas += np.float32(rng.uniform(0.3, 1.0)) * (soft2 - canvas)
    canvas += rng.normal(0, rng.uniform(0.005, 0.03), (h, w, 1)).astype(np.float32) * \
        rng.uniform(0.5, 1.0, 3).astype(np.float32)
    image = Image.fromarray((np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8))
    semantic = visible_cls.copy()
    semantic[semantic == _EXCLUDED_CLASS] = 0
    return SyntheticImage(image_id(seed, index), np.asarray(image), out_instances, persons, semantic, kind)


# =====================================================================================================
# Writing a dataset
# =====================================================================================================
_OUTPUTS = ("train", "train.csv", "persons.csv", "label_descriptions.json", "GENERATOR.json")


def _check_label_descriptions(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"label_descriptions.json not found: {path}")
    raw = path.read_bytes()
    try:
        cats = {int(c["id"]): str(c["name"]).strip().lower() for c in json.loads(raw)["categories"]}
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an iMaterialist label_descriptions.json ({err})") from err
    wrong = {cid: cats.get(cid) for cid, name in CATEGORY_NAMES.items() if cats.get(cid) != name}
    if wrong:
        raise ValueError(f"{path}: the generator draws original iMaterialist 2019 ids, but these ids have other "
                         f"names there: {wrong} (expected {[CATEGORY_NAMES[c] for c in wrong]})")
    return raw


def _complete(root: Path, params: dict) -> bool:
    try:
        info = json.loads((root / "GENERATOR.json").read_text())
    except (OSError, ValueError):
        return False
    if not (info.get("complete") and info.get("version") == GENERATOR_VERSION and info.get("params") == params):
        return False
    if not all((root / f).is_file() for f in ("train.csv", "persons.csv", "label_descriptions.json")):
        return False
    train = root / "train"
    return train.is_dir() and sum(1 for _ in train.glob("*.jpg")) == params["n_images"]


def generate(root: str | Path, n_images: int = 1000, height: int = 288, width: int = 192, seed: int = 0,
             second_person_share: float = 0.25, jumpsuit_share: float = 0.03, progress: bool = True, *,
             product_share: float = 0.05, label_descriptions: str | Path | None = None) -> Path:
    """Write a synthetic dataset in the iMaterialist 2019 layout under ``root`` and return ``root``.

    An existing complete folder written with the same parameters (and generator version) is returned as it is;
    one written with other parameters is regenerated (only the generator's own files are removed). A non-empty
    folder the generator did not write is refused. ``label_descriptions``: the file copied into the dataset
    (default: the real file shipped in the package); its ids must name the categories the generator draws.
    """
    root = Path(root)
    n_images, height, width, seed = int(n_images), int(height), int(width), int(seed)
    if n_images < 1:
        raise ValueError(f"n_images must be ≥ 1, got {n_images}")
    for name, v in (("second_person_share", second_person_share), ("jumpsuit_share", jumpsuit_share),
                    ("product_share", product_share)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    if product_share + jumpsuit_share > 1.0 or second_person_share > 1.0 - product_share:
        raise ValueError("shares do not fit: product_share + jumpsuit_share ≤ 1 and "
                         "second_person_share ≤ 1 - product_share are needed")
    ld_path = Path(label_descriptions) if label_descriptions is not None else default_label_descriptions()
    ld_raw = _check_label_descriptions(ld_path)
    params = {"n_images": n_images, "height": height, "width": width, "seed": seed,
              "second_person_share": float(second_person_share), "jumpsuit_share": float(jumpsuit_share),
              "product_share": float(product_share), "jpeg_quality": JPEG_QUALITY, "jpeg_chroma": "4:4:4",
              "label_descriptions_sha256": hashlib.sha256(ld_raw).hexdigest()}
    marker = root / "GENERATOR.json"
    if marker.is_file():
        if _complete(root, params):
            return root
        for name in _OUTPUTS:   # ours: remove before regenerating, so no stale image survives
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and was not written by the synthetic generator (no GENERATOR.json); "
                              f"refusing to write into it")
    root.mkdir(parents=True, exist_ok=True)
    info = {"generator": __name__, "version": GENERATOR_VERSION, "params": params, "complete": False}
    marker.write_text(json.dumps(info, indent=2))
    (root / "train").mkdir()
    (root / "label_descriptions.json").write_bytes(ld_raw)

    from tqdm.auto import tqdm

    start = time.perf_counter()
    rows: list[tuple] = []
    person_rows: list[tuple] = []
    kinds: dict[str, int] = {}
    for i in tqdm(range(n_images), disable=not progress, desc="synthetic images", unit="img"):
        d = draw_image(seed, i, height=height, width=width, second_person_share=second_person_share,
                       jumpsuit_share=jumpsuit_share, product_share=product_share)
        # 4:4:4 chroma: at 288×192, subsampled colour would smear the fine textures (knit, stripes)
        Image.fromarray(d.image).save(root / "train" / d.image_id, format="JPEG", quality=JPEG_QUALITY,
                                      subsampling=0)
        for inst in d.instances:
            rows.append((d.image_id, encode(inst.mask), height, width, class_id_string(inst)))
        for p in d.persons:
            person_rows.append((d.image_id, p.person, p.x_min, p.y_min, p.x_max, p.y_max, int(p.annotated)))
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    _write_csv(root / "train.csv", ("ImageId", "EncodedPixels", "Height", "Width", "ClassId"), rows)
    _write_csv(root / "persons.csv", ("ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated"),
               person_rows)
    info.update(complete=True, n_instances=len(rows), n_persons=len(person_rows),
                n_second_person=sum(1 for r in person_rows if r[-1] == 0), kinds=kinds,
                seconds=round(time.perf_counter() - start, 2))
    marker.write_text(json.dumps(info, indent=2))
    return root


def _write_csv(path: Path, header, rows) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
