"""Textures and colours: fabric patterns rendered as float32 RGB arrays in image coordinates."""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image


@lru_cache(maxsize=4)
def grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


@dataclass
class Tex:
    """A texture: a ``kind`` of pattern between two colours, in image pixels (so it does not follow the body)."""

    kind: str
    c1: np.ndarray
    c2: np.ndarray
    period: float = 6.0
    angle: float = 0.0
    phase: float = 0.0
    seed: int = 0
    wave: float = 0.05


def rand_colour(rng, s_range=(0.0, 0.9), v_range=(0.12, 0.95)):
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*s_range), rng.uniform(*v_range)), np.float32)


def near_colour(rng, c, amount=0.25):
    return np.clip(c + rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)


#: The iMaterialist pattern attribute id of each texture kind.
TEX_ATTR = {"plain": 61, "stripes": 72, "checks": 66, "dots": 67, "abstract": 62, "melange": 61,
            "knit": 61, "denim": 46}

SKIN = np.array([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
                 (92, 56, 33)], np.float32) / 255
HAIR = np.array([(20, 15, 12), (60, 40, 25), (110, 75, 45), (200, 165, 90), (150, 60, 30), (170, 170, 170)],
                np.float32) / 255


def render_tex(t: Tex, h: int, w: int, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The texture over the image window ``(y0, y1, x0, x1)`` (default: the whole h×w image)."""
    y0, y1, x0, x1 = window if window is not None else (0, h, 0, w)
    yy, xx = grid(h, w)
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


def garment_tex(rng, kind_weights=None, h_px=30.0, colour=None) -> Tex:
    """A random fabric; ``kind_weights`` over plain, stripes, checks, dots, melange, abstract, knit, denim."""
    kinds = ["plain", "stripes", "checks", "dots", "melange", "abstract", "knit", "denim"]
    weights = np.array(kind_weights if kind_weights is not None else [35, 15, 9, 8, 10, 10, 8, 5], float)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    c1 = colour if colour is not None else rand_colour(rng)
    if kind == "denim":
        c1 = np.array(colorsys.hsv_to_rgb(rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.7)),
                      np.float32)
    if kind in ("knit", "melange", "denim"):
        c2 = np.clip(c1 * rng.uniform(0.6, 0.85), 0, 1).astype(np.float32)
    elif rng.random() < 0.5:
        c2 = rand_colour(rng)
    else:
        c2 = near_colour(rng, c1, 0.35)
    period = {"knit": rng.uniform(1.8, 3.2), "denim": rng.uniform(1.8, 3.0),
              "melange": 1.0}.get(kind, max(2.5, rng.uniform(0.08, 0.4) * h_px))
    return Tex(kind, c1.astype(np.float32), c2, period=float(period), angle=float(rng.uniform(0, np.pi)),
               phase=float(rng.uniform()), seed=int(rng.integers(2**31)), wave=float(rng.uniform(0.0, 0.12)))
