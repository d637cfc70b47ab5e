"""Shapes in the body frame, and turning them into pixels.

The body frame: x right, y down, unit = one head height, head top at (0, 0), soles at about
:data:`FULL_HEIGHT`. Every element of a person is a list of polygons in that frame; a :class:`Placement`
(scale, lean, mirror, offset) maps them into the image, where :func:`rasterise` fills them.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

FULL_HEIGHT = 7.85


def ellipse(cx, cy, rx, ry, n=18):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def capsule(p0, p1, r0, r1, cap0=True, cap1=True, n=5):
    """Polygon of a tapered thick segment, with round or flat ends."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    length = math.hypot(d[0], d[1])
    if length < 1e-6:
        return ellipse(p0[0], p0[1], max(r0, r1), max(r0, r1), 10)
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


def chain(points, radii, frac=1.0, cap_end=True):
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
            polys.append(capsule(pts[i], pe, radii[i], re, cap1=cap_end))
            break
        polys.append(capsule(pts[i], pts[i + 1], radii[i], radii[i + 1]))
        acc += seg
    return polys


def point_on_chain(points, frac):
    pts = [np.asarray(p, float) for p in points]
    lengths = [float(np.hypot(*(b - a))) for a, b in zip(pts[:-1], pts[1:])]
    target, acc = frac * sum(lengths), 0.0
    for i, seg in enumerate(lengths):
        if acc + seg >= target or i == len(lengths) - 1:
            return pts[i] + min(1.0, (target - acc) / max(seg, 1e-9)) * (pts[i + 1] - pts[i])
        acc += seg
    return pts[-1]


def hem_between(xl, xr, hem):
    """Points of a slightly curved hem between the two side ends (exclusive)."""
    t = np.linspace(0, 1, 7)[1:-1]
    return list(zip(xl + t * (xr - xl), hem + 0.05 * np.sin(np.pi * t)))


def direction(side, angle):
    """Unit vector pointing down, turned outward (away from the body's centre line) by ``angle``."""
    return np.array([side * math.sin(angle), math.cos(angle)])


class Placement(NamedTuple):
    """Body frame → image pixels: ``px = poly @ a.T + t``."""

    a: np.ndarray   # 2×2
    t: np.ndarray   # 2


def placement(scale, x_c, y_top, lean=0.0, mirror=1) -> Placement:
    """Scale, lean about the soles' centre, mirror, then shift the body's centre line to ``x_c``."""
    c, s = math.cos(lean), math.sin(lean)
    rot = np.array([[c, -s], [s, c]])
    pivot = np.array([0.0, FULL_HEIGHT])
    flip = np.diag([float(mirror), 1.0])
    a = scale * flip @ rot
    t = scale * flip @ (pivot - rot @ pivot) + np.array([x_c, y_top])
    return Placement(a, t)


def to_px(poly, pl: Placement):
    return poly @ pl.a.T + pl.t


def bbox_of(elems, pl):
    pts = np.concatenate([to_px(p, pl) for e in elems for p in e.polys])
    return pts.min(0), pts.max(0)


def rasterise(elems, pl, h, w):
    """Full-size boolean masks of the elements and their pixel windows ``(y0, y1, x0, x1)`` (None if off-image)."""
    masks, windows = [], []
    for e in elems:
        qs = [to_px(p, pl) for p in e.polys]
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


def outline(m):
    """The pixels of ``m`` with a 4-neighbour outside it."""
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner
