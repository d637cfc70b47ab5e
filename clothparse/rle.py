"""Run-length encoding in the Kaggle convention: ``"start length start length ..."``,
1-indexed starts over the mask flattened column-major (top to bottom, then left to right)."""
from __future__ import annotations

import re

import numpy as np

__all__ = ["encode", "encode_classes", "decode", "parse_runs"]

_INTEGER = re.compile(r"[+-]?[0-9]+")


def encode(mask: np.ndarray) -> str:
    """Encode a 2-D boolean mask. An empty mask encodes to ``""``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    flat = mask.astype(bool).ravel(order="F")
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # 0-based: run starts, then ends (exclusive)
    starts, ends = edges[0::2], edges[1::2]
    return _pairs_text(starts, ends - starts)


def _pairs_text(starts: np.ndarray, lengths: np.ndarray) -> str:
    pairs = np.empty(2 * len(starts), dtype=np.int64)
    pairs[0::2] = starts + 1
    pairs[1::2] = lengths
    return " ".join(map(str, pairs.tolist()))


def encode_classes(mask: np.ndarray, values) -> dict[int, tuple[str, int]]:
    """Per value of ``values``: (the RLE of ``mask == value``, its pixel count), as :func:`encode` would give
    each, from one pass over a class-id mask instead of one per value."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    flat = mask.ravel(order="F")
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1]) if flat.size else np.zeros(0, np.int64)
    lengths = np.diff(np.append(starts, flat.size))
    run_values = flat[starts]
    out = {}
    for v in values:
        own = run_values == v
        out[v] = (_pairs_text(starts[own], lengths[own]), int(lengths[own].sum()))
    return out


def parse_runs(rle: str, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate an RLE string and return 0-based ``(starts, lengths)``; raise ``ValueError`` if malformed."""
    if not isinstance(rle, str):
        if rle is None or (isinstance(rle, float) and np.isnan(rle)):
            rle = ""
        else:
            raise ValueError(f"RLE must be a string, got {type(rle).__name__}")
    tokens = rle.split()
    if len(tokens) % 2:
        raise ValueError(f"RLE has an odd number of tokens ({len(tokens)}): expected start/length pairs")
    try:
        # Fast path; Python's int() also takes "1_000" and non-ASCII digits, which are not RLE integers.
        if "_" in rle or not rle.isascii():
            raise ValueError
        values = np.array([int(t) for t in tokens], dtype=np.int64)
    except (ValueError, OverflowError):
        for t in tokens:
            if not _INTEGER.fullmatch(t):
                raise ValueError(f"RLE token {t!r} is not an integer") from None
            if abs(int(t)) >= 2**63:
                raise ValueError(f"RLE token {t!r} is too large") from None
        values = np.array([int(t) for t in tokens], dtype=np.int64)  # e.g. split on non-ASCII whitespace
    starts, lengths = values[0::2], values[1::2]
    if starts.size == 0:
        return starts, lengths
    if (starts < 1).any():
        i = int(np.argmax(starts < 1))
        raise ValueError(f"RLE run {i} starts at {starts[i]} (< 1; starts are 1-indexed)")
    if (lengths < 1).any():
        i = int(np.argmax(lengths < 1))
        raise ValueError(f"RLE run {i} has length {lengths[i]} (< 1)")
    # exclusive, 0-based; clipped first so that huge tokens cannot overflow int64 and slip past the check
    ends = np.minimum(starts, n_pixels + 1) - 1 + np.minimum(lengths, n_pixels + 1)
    if (ends > n_pixels).any():
        i = int(np.argmax(ends > n_pixels))
        raise ValueError(f"RLE run {i} (start {starts[i]}, length {lengths[i]}) runs past the end of "
                         f"the mask ({n_pixels} pixels)")
    if starts.size > 1:
        if (np.diff(starts) <= 0).any():
            i = int(np.argmax(np.diff(starts) <= 0)) + 1
            raise ValueError(f"RLE runs are not sorted: run {i} starts at {starts[i]} after {starts[i - 1]}")
        if (starts[1:] - 1 < ends[:-1]).any():
            i = int(np.argmax(starts[1:] - 1 < ends[:-1])) + 1
            raise ValueError(f"RLE run {i} (start {starts[i]}) overlaps run {i - 1} "
                             f"(start {starts[i - 1]}, length {lengths[i - 1]})")
    return starts - 1, lengths


def decode(rle: str, height: int, width: int) -> np.ndarray:
    """Decode to a boolean ``height × width`` mask (vectorised: a cumulative sum of run edges)."""
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be positive, got {height}×{width}")
    n = height * width
    starts, lengths = parse_runs(rle, n)
    # runs are sorted and disjoint (checked above), so +1 at starts / -1 at ends never exceeds 0..1 in int8
    delta = np.zeros(n + 1, dtype=np.int8)
    delta[starts] = 1
    delta[starts + lengths] -= 1
    flat = np.cumsum(delta[:-1], dtype=np.int8).astype(bool)
    return flat.reshape((height, width), order="F")
