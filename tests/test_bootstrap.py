"""clothparse.evaluation.bootstrap and the claims' statistics: known answers, paired differences equal to the
difference of pooled IoUs of the summed matrices, the verdict rule, and the intervals' own jitter."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clothparse.evaluation.bootstrap import Interval, image_bootstrap, interval_jitter, stack
from clothparse.evaluation.claims import (
    confusion_excess,
    label_counts,
    macro_f1,
    pooled_excl_bg,
    seed_interval,
    verdict,
)
from clothparse.evaluation.metrics import per_image_confusion, pooled_iou


def _mean(summed):
    return summed[..., 0] / summed[..., 1]


def test_the_mean_of_normal_data_gets_the_textbook_interval():
    """For a sample mean the bootstrap interval is the normal one, mean ± 1.96 s/√n, up to O(1/n)."""
    x = np.random.default_rng(0).normal(10.0, 3.0, 500)
    iv = image_bootstrap(stack(x, np.ones_like(x)), _mean)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - half, abs=0.03 * half * 10 / 3)
    assert iv.high == pytest.approx(x.mean() + half, abs=0.03 * half * 10 / 3)
    assert iv.n_images == 500 and iv.method == "BCa"


def test_coverage_of_a_ratio_over_many_draws():
    """About 95 % of intervals from fresh test sets hold the true pooled ratio (a ratio of sums, as IoU is)."""
    rng = np.random.default_rng(1)
    hits, draws = 0, 200
    for _ in range(draws):
        den = rng.integers(50, 150, 120).astype(float)
        num = rng.binomial(den.astype(int), 0.6).astype(float)
        iv = image_bootstrap(stack(num, den), _mean, n_resamples=999, method="percentile", seed=int(rng.integers(1e6)))
        hits += iv.low <= 0.6 <= iv.high
    assert 0.90 <= hits / draws <= 0.99


def test_identical_images_give_a_zero_width_interval_and_nan_stays_nan():
    same = np.tile([[3.0, 4.0]], (40, 1))
    iv = image_bootstrap(same, _mean, method="percentile")
    assert iv.low == pytest.approx(0.75) and iv.high == pytest.approx(0.75)
    assert np.isnan(image_bootstrap(np.zeros((10, 2)), _mean).low)


def _two_models(n=150, seed=0, shift=0.1):
    """Per-image confusion matrices of two correlated 'models' on the same images (B corrupts more)."""
    rng = np.random.default_rng(seed)
    gt = torch.from_numpy(rng.integers(0, 9, (n, 12, 12)))
    noise = torch.from_numpy(rng.random((n, 12, 12)))
    wrong = torch.from_numpy(rng.integers(0, 9, (n, 12, 12)))
    a = torch.where(noise < 0.3, wrong, gt)
    b = torch.where(noise < 0.3 + shift, wrong, gt)
    return per_image_confusion(a, gt).numpy(), per_image_confusion(b, gt).numpy()


def test_paired_difference_is_the_difference_of_pooled_ious_and_narrower_than_unpaired():
    a, b = _two_models()
    k = 81
    iv = image_bootstrap(stack(a, b), lambda s: pooled_excl_bg(s[..., :k]) - pooled_excl_bg(s[..., k:]))
    assert iv.estimate == pytest.approx(100 * (pooled_iou(a.sum(0)) - pooled_iou(b.sum(0))))
    assert iv.low > 0  # A corrupts fewer pixels on every image: the difference is resolved
    # unpaired: each model resampled on its own images; the difference's spread is the sum of both
    ia, ib = (image_bootstrap(stack(x), pooled_excl_bg) for x in (a, b))
    unpaired_half = np.hypot(ia.high - ia.low, ib.high - ib.low) / 2
    assert (iv.high - iv.low) / 2 < unpaired_half


def test_vector_statistics_give_one_interval_each():
    a, _ = _two_models(n=60)
    ivs = image_bootstrap(stack(a), lambda s: np.stack([pooled_excl_bg(s), confusion_excess(s, 1, 2)], -1))
    assert len(ivs) == 2 and all(isinstance(i, Interval) for i in ivs)
    assert ivs[0].estimate == pytest.approx(100 * pooled_iou(a.sum(0)))


def test_the_intervals_own_jitter_is_well_under_a_tenth_of_a_point():
    a, b = _two_models(n=163)
    diff = image_bootstrap(stack(a, b), lambda s: pooled_excl_bg(s[..., :81]) - pooled_excl_bg(s[..., 81:]))
    jitter = interval_jitter(stack(a, b), lambda s: pooled_excl_bg(s[..., :81]) - pooled_excl_bg(s[..., 81:]))
    assert jitter < 0.05, (jitter, diff)


def test_confusion_excess_and_macro_f1_known_values():
    m = np.zeros((9, 9))
    m[5, 5], m[5, 6], m[5, 1] = 60, 30, 10          # skirt: 30 % to dress, 10 % to top, 0 to the others
    assert confusion_excess(m, 5, 6) == pytest.approx(30 - 10 / 6)
    m[0, 3], m[3, 3] = 10, 90                       # of predicted pants, 10 % are background
    assert confusion_excess(m, 3, 0, by="column") == pytest.approx(10 - 0)
    present = np.array([[1, 0, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]], bool)
    predicted = np.array([[1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]], bool)
    # class 0: F1 1; class 1: 1; class 2: tp 0, fp 1, fn 1 → 0; five empty classes: 1 → mean 7/8
    assert macro_f1(label_counts(present, predicted).sum(0).reshape(-1)) == pytest.approx(100 * 7 / 8)


def test_verdict_rule():
    assert verdict(1.28, [(0.2, 1.9)]) == "agrees"
    assert verdict(1.28, [(-2.0, -0.5)]) == "contradicts"
    assert verdict(1.28, [(-0.3, 0.9)]) == "inconclusive"
    assert verdict(1.28, [(0.2, 1.9), (-0.1, 2.5)]) == "inconclusive"  # the seeds do not resolve it
    assert verdict(0.01, [(0.2, 1.9)]) == "inconclusive"               # no clear sign in the paper
    assert verdict(87.1, [(80.0, 90.0)], level=True) == "agrees"
    assert verdict(87.1, [(40.0, 60.0)], level=True) == "contradicts"
    assert verdict(1.0, [(np.nan, np.nan)]) == "inconclusive"


def test_seed_interval_is_the_t_interval():
    lo, hi = seed_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0)
    assert (hi - lo) / 2 == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    assert seed_interval([1.0]) is None


def test_a_class_missing_from_some_resamples_gets_the_percentile_interval_of_the_others():
    """Skirt on one image of ten: resamples without it leave the skirt → dress share undefined."""
    m = np.zeros((10, 9, 9))
    m[:, 1, 1] = 50
    m[0, 5, 5], m[0, 5, 6], m[0, 5, 1] = 60, 30, 10
    m[1:, 1, 2] = np.arange(1, 10)
    iv = image_bootstrap(stack(m), lambda s: confusion_excess(s, 5, 6))
    assert iv.method == "percentile" and np.isfinite(iv.low) and iv.low <= iv.estimate <= iv.high
