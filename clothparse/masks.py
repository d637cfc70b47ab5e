"""What a class-id mask holds: pixels per class, the classes present and their tight boxes (NumPy, one mask).

Shared by the dataset readers, the reports and the parser, so the three count a mask the same way. It imports
nothing of the package but :mod:`clothparse.categories`, so any of them can use it without an import circle.

The batched tensor version of the boxes, :func:`clothparse.models.boxes.boxes_from_masks`, is a different
operation on purpose: it computes the BBBranch training targets for a whole batch on the masks' device, relative to
the image and without a host synchronisation; the functions here work on one full-resolution mask on the CPU in
pixels (a parsed photo can be far larger than a training batch, and a one-hot copy of it per class is not needed).
Both use the same rule: a box is the tight rectangle around all pixels of its class, maximum exclusive.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from clothparse.categories import NUM_CLASSES

__all__ = ["class_counts", "classes_present", "tight_boxes"]

Box = tuple[int, int, int, int]  # x_min, y_min, x_max, y_max in pixels, max exclusive


def class_counts(mask: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """Pixels per class (``NUM_CLASSES`` int64) of a class-id mask; values outside ``0..NUM_CLASSES-1`` are not
    counted. A uint8 mask is counted by one vectorised comparison per class (faster than ``np.bincount``, which
    casts its input to int64); ``chunk`` pixels at a time keep either copy small for a huge mask."""
    flat = np.asarray(mask).reshape(-1)
    counts = np.zeros(NUM_CLASSES, np.int64)
    for start in range(0, flat.size, chunk):
        part = flat[start:start + chunk]
        if part.dtype == np.uint8:
            counts += [np.count_nonzero(part == c) for c in range(NUM_CLASSES)]
        else:
            counts += np.bincount(part, minlength=NUM_CLASSES)[:NUM_CLASSES]
    return counts


def classes_present(mask: np.ndarray, min_pixels: int = 1) -> tuple[int, ...]:
    """Clothing classes (1..8), sorted, covering at least ``min_pixels`` pixels of ``mask``."""
    counts = class_counts(mask)
    return tuple(c for c in range(1, NUM_CLASSES) if counts[c] >= min_pixels)


def tight_boxes(mask: np.ndarray, classes: Iterable[int]) -> dict[int, Box]:
    """``{class: (x_min, y_min, x_max, y_max)}`` in pixels (max exclusive) around all pixels of each of
    ``classes``; a class without a pixel in ``mask`` gets no box."""
    out = {}
    mask = np.asarray(mask)
    for c in classes:
        m = mask == c
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if rows.size:
            out[int(c)] = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return out
