"""Bootstrap intervals over test images: how far a pooled IoU (or a difference of two) could move if
another test set of the same size had been drawn.

Every score of the paper is a function of counts summed over images (a pooled IoU of the summed
confusion matrix; an F1 of summed label counts), so a resample of the test set needs only its per-image
counts: each resample is a vector of multiplicities ``w`` and its score ``f(w @ counts)``. The resampling
and the interval are :func:`scipy.stats.bootstrap`'s (BCa by default); the statistic it resamples is the
image index, turned into multiplicities here. A *paired* interval resamples one set of images and scores
both models on it: pass both models' counts side by side (:func:`stack`) and a statistic of the
difference.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "image_bootstrap", "stack", "interval_jitter", "N_RESAMPLES", "SEED", "CONFIDENCE"]

#: Resamples per interval: enough that an endpoint's own Monte Carlo jitter stays well under 0.1 point (SciPy's
#: 9,999 is not: :func:`interval_jitter` measures it, and the claims page prints it for each build).
N_RESAMPLES = 99_999
#: The fixed seed of every interval the book shows: a rebuild gives the same intervals.
SEED = 0
CONFIDENCE = 0.95
#: Resamples scored at once (bounds memory at ``BATCH × n_images`` multiplicities).
BATCH = 500


@dataclass(frozen=True)
class Interval:
    """A statistic on all test images and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float = CONFIDENCE
    method: str = "BCa"
    n_resamples: int = N_RESAMPLES
    n_images: int = 0

    def __str__(self) -> str:
        return f"{self.estimate:.2f} [{self.low:.2f}, {self.high:.2f}]"


def stack(*per_image: np.ndarray) -> np.ndarray:
    """Per-image arrays (N×…, equal N) flattened side by side into one N×D float array."""
    if not per_image:
        raise ValueError("nothing to stack")
    n = {len(a) for a in per_image}
    if len(n) != 1:
        raise ValueError(f"per-image arrays must cover the same images, got lengths {sorted(n)}")
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in per_image], axis=1)


def _multiplicities(idx: np.ndarray, n_images: int) -> np.ndarray:
    """Resampled image indices (B×n) → how often each image was drawn (B×N)."""
    b = idx.shape[0]
    offsets = (np.arange(b, dtype=np.int64) * n_images)[:, None]
    return np.bincount((idx + offsets).ravel(), minlength=b * n_images).reshape(b, n_images).astype(np.float64)


def image_bootstrap(counts: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], *,
                    n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, method: str = "BCa",
                    seed: int = SEED) -> Interval | list[Interval]:
    """The bootstrap interval of ``statistic`` over the images whose per-image ``counts`` (N×D) are given.

    ``statistic`` maps summed counts (…×D) to the score (…) or to several scores (…×k), vectorised over
    the leading axes. Returns one :class:`Interval`, or a list of k. Images are resampled with
    replacement, ``n_resamples`` times, by :func:`scipy.stats.bootstrap` with ``method`` ("BCa",
    "percentile" or "basic") and a generator seeded with ``seed``. A score that is undefined on the
    full test set (NaN: e.g. a class present in no image) gives a NaN interval, not an error; BCa falls back
    to the percentile interval where its jackknife is undefined (``Interval.method`` says which)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or len(counts) < 2:
        raise ValueError(f"counts must be N×D with at least 2 images, got shape {counts.shape}")
    n_images = len(counts)
    full = np.asarray(statistic(counts.sum(0)), dtype=np.float64)
    multi = full.ndim == 1

    def resampled(idx, axis=-1):
        idx = np.asarray(idx)
        lead, n = idx.shape[:-1], idx.shape[-1]
        scores = np.asarray(statistic(_multiplicities(idx.reshape(-1, n), n_images) @ counts), dtype=np.float64)
        # scipy wants the k outputs first for a vector statistic
        return np.moveaxis(scores, -1, 0).reshape(full.shape + lead) if multi else scores.reshape(lead)

    nan = Interval(float("nan"), float("nan"), float("nan"), confidence, method, n_resamples, n_images)
    if not np.any(np.isfinite(full)):
        return [nan] * len(full) if multi else nan
    low, high, _ = _scipy_interval(resampled, n_images, n_resamples, confidence, method, seed)
    if np.any(np.isfinite(np.atleast_1d(full)) & ~np.isfinite(low)):
        # On a few test images a resample (or BCa's leave-one-out jackknife) can lack a class, and a score of
        # that class is undefined there: the percentile interval of the resamples where it is defined.
        method = "percentile"
        _, _, dist = _scipy_interval(resampled, n_images, n_resamples, confidence, method, seed)
        dist = dist.reshape(-1, dist.shape[-1])
        alpha = (1 - confidence) / 2 * 100
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            low, high = np.nanpercentile(dist, alpha, axis=-1), np.nanpercentile(dist, 100 - alpha, axis=-1)
    out = [Interval(float(e), float(lo), float(hi), confidence, method, n_resamples, n_images)
           if np.isfinite(e) else nan for e, lo, hi in zip(np.atleast_1d(full), low, high)]
    return out if multi else out[0]


def _scipy_interval(resampled, n_images: int, n_resamples: int, confidence: float, method: str,
                    seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low and high endpoints (1-d) and the bootstrap distribution of scipy's interval."""
    from scipy import stats

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # a score that no resample can change (a class no image has) comes back NaN, said by the caller
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap((np.arange(n_images),), resampled, vectorized=True, n_resamples=n_resamples,
                              confidence_level=confidence, method=method, batch=BATCH,
                              rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return np.atleast_1d(ci.low), np.atleast_1d(ci.high), np.asarray(res.bootstrap_distribution)


def interval_jitter(counts: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                    seeds: Sequence[int] = (1, 2, 3, 4, 5), **kwargs) -> float:
    """The largest change of either endpoint over bootstrap seeds: how much of an interval is Monte
    Carlo noise of the resampling itself (not of the test set)."""
    ends = np.array([[iv.low, iv.high] for iv in (image_bootstrap(counts, statistic, seed=s, **kwargs)
                                                   for s in seeds)])
    return float(np.nanmax(ends.max(0) - ends.min(0)))
