"""One garment of a parsed photo: its boolean mask, its RGBA cut-out, its run-length encoding.

A parse's mask is a :class:`ClassMask`: the H×W class-id array (uint8, 0..8) it always was — indexing,
comparisons and arithmetic give plain arrays — that can also be *called* with a class name:
``result.mask("skirt")`` is the skirt's H×W boolean mask. A cut-out (:func:`cutout`) is the photo cropped to
the garment's box (x_min, y_min, x_max, y_max; max exclusive) as RGBA: alpha 255 on the garment and 0
elsewhere, where the RGB is 0 too (transparent black: nothing of the rest of the photo is kept, and the PNG is
smaller). Garment masks in JSON are :mod:`clothparse.rle` strings (the Kaggle convention: 1-indexed
``start length`` pairs over the mask flattened column-major), decoded by ``rle.decode(text, height, width)``.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from clothparse.categories import CLASSES, CLOTHING

__all__ = ["ClassMask", "class_index", "parse_classes", "cutout", "on_checkerboard"]


def class_index(name: str, clothing_only: bool = True) -> int:
    """The class id of ``name``; a ``ValueError`` listing the valid names for anything else."""
    valid = CLOTHING if clothing_only else CLASSES
    if name not in valid:
        kind = "clothing class" if clothing_only else "class"
        raise ValueError(f"unknown {kind} {name!r}; the {kind}es are {', '.join(valid)}")
    return CLASSES.index(name)


def parse_classes(classes: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``"pants,skirt"`` (or a list of names) → ``("pants", "skirt")`` in the project's class order,
    checked (:func:`class_index`); ``None`` or an empty selection → ``None`` (every class)."""
    if classes is None:
        return None
    names = [c.strip() for c in (classes.split(",") if isinstance(classes, str) else classes)]
    names = [c for c in names if c]
    for c in names:
        class_index(c)
    return tuple(c for c in CLOTHING if c in names) or None


class ClassMask(np.ndarray):
    """An H×W class-id mask (an ``ndarray``) that, called with a class name, gives that class's boolean mask.

    Slices stay :class:`ClassMask`; the results of ufuncs and reductions (``mask == 3``, ``mask.sum()``) are
    plain arrays and scalars, so the subclass does not spread into a caller's arrays."""

    def __new__(cls, mask) -> ClassMask:
        return np.asarray(mask).view(cls)

    def __call__(self, name: str) -> np.ndarray:
        """H×W bool: the pixels of class ``name`` (any of the 9, ``"background"`` included)."""
        return np.asarray(self) == class_index(name, clothing_only=False)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        plain = np.asarray(array).view(np.ndarray)
        return plain[()] if return_scalar else plain


def cutout(image: np.ndarray, garment: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``image`` (H×W×3 uint8) cropped to ``box`` as RGBA: alpha and RGB from ``garment`` (H×W bool, the same
    resolution as ``image``); outside the garment, transparent black."""
    if image.shape[:2] != garment.shape:
        raise ValueError(f"the image ({image.shape[0]}×{image.shape[1]}) and the garment's mask "
                         f"({garment.shape[0]}×{garment.shape[1]}) differ in size")
    x0, y0, x1, y1 = box
    inside = garment[y0:y1, x0:x1]
    out = np.zeros((*inside.shape, 4), np.uint8)
    out[inside, :3] = image[y0:y1, x0:x1][inside]
    out[inside, 3] = 255
    return out


def on_checkerboard(rgba: np.ndarray, square: int | None = None,
                    shades: tuple[int, int] = (255, 228)) -> np.ndarray:
    """An RGBA cut-out composited on a light checkerboard (RGB uint8), the usual picture of transparency;
    ``square``: the checks' side in pixels (default: about a twelfth of the shorter side)."""
    h, w = rgba.shape[:2]
    square = max(2, min(h, w) // 12) if square is None else int(square)
    checks = ((np.arange(h)[:, None] // square + np.arange(w)[None, :] // square) % 2).astype(np.uint8)
    board = np.where(checks[..., None] == 1, shades[1], shades[0]).astype(np.float32)
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    return np.round(rgba[..., :3] * alpha + board * (1 - alpha)).astype(np.uint8)
