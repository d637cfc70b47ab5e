"""Does each claim of the paper hold on this build? One row per claim: the paper's value, ours with its
95 % interval over test images (and the spread over training seeds where a profile trains several),
and a verdict by the rule of :data:`VERDICT_RULE`.

The claims, each a statistic of per-image counts (:mod:`clothparse.evaluation.bootstrap` resamples the images):

- Table 2's ordering, pair by pair (Our model > ClassBranch only > Branches > plain U-Net > DeepLabV3+ >
  DeepLabV3 > FPN), and the branches' gains over the plain U-Net: paired differences of pooled IoU excl. bg;
- Table 1: the plain U-Net on refined minus base training data;
- Table 5: what ground-truth injection adds to Our model (With GT − Without GT);
- Table 4: the ClassBranch's F1 (the paper's average, :data:`~clothparse.evaluation.metrics.PAPER_F_AVERAGE`);
- Table 3's named confusions (dress ↔ skirt, top ↔ overtop, shorts → skirt, pants → background): how much
  more of a class goes to the named one than, on average, to the other garments.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clothparse.categories import CLASSES, CLOTHING, SHORT_LABELS
from clothparse.evaluation.bootstrap import Interval, image_bootstrap, stack
from clothparse.evaluation.metrics import _fbeta, mask_iou, per_class_iou, pooled_iou
from clothparse.evaluation.paper import table2_row, table3_matrices, tables
from clothparse.profiles import load_profile
from clothparse.runs import RunDir, select_runs

__all__ = ["Claim", "CLAIMS", "HEADLINE_CLAIM", "VERDICT_RULE", "verdict", "seed_interval", "claims_table",
           "pooled_excl_bg", "iou_scores", "METRICS", "confusion_excess", "macro_f1", "mean_over_seeds",
           "confusions_of"]

K = len(CLASSES)
#: What :func:`iou_scores` returns: the headline IoUs of Table 2, then the per-class IoUs.
METRICS: tuple[str, ...] = ("IoU excl. bg", "IoU overall", "IoU Mask", *SHORT_LABELS)

VERDICT_RULE = (
    "A claim about a difference (Tables 1, 2, 3 and 5) **agrees** when every interval we have of it — the 95 % "
    "bootstrap interval over test images and, with two or more training seeds, the 95 % t-interval over seeds — "
    "lies on the paper's side of zero; it **contradicts** when every one lies on the other side; otherwise it is "
    "**inconclusive**, as is any claim whose paper value is within ±0.05 of zero (no clear sign). A claim about a "
    "level (Table 4's F1) **agrees** when every interval contains the paper's value and **contradicts** when "
    "none does; otherwise it is inconclusive. With one seed, the variance of training is not measured and the "
    "verdict rests on the test images alone.")


# --- statistics of summed counts (vectorised over leading axes) ------------------------------------------------
def _square(summed) -> np.ndarray:
    """Summed confusion counts as …×K×K (given …×K·K or …×K×K)."""
    m = np.asarray(summed, dtype=np.float64)
    return m.reshape(*m.shape[:-1], K, K) if m.shape[-1] == K * K else m


def iou_scores(summed: np.ndarray) -> np.ndarray:
    """:data:`METRICS` (percent) of summed confusion counts …×K·K, vectorised: pooled IoU excl. bg, pooled
    IoU overall, IoU Mask, then each class's IoU (the functions of :mod:`clothparse.evaluation.metrics`, on a stack)."""
    m = _square(summed)
    headline = [pooled_iou(m), pooled_iou(m, include_background=True), mask_iou(m)]
    return 100 * np.concatenate([np.stack(headline, axis=-1), per_class_iou(m)], axis=-1)


def pooled_excl_bg(summed: np.ndarray) -> np.ndarray:
    """The paper's IoU excl. bg (percent) of summed K×K confusion counts (…×K·K or …×K×K)."""
    return iou_scores(summed)[..., 0]


def confusion_excess(summed: np.ndarray, source: int, target: int, by: str = "row") -> np.ndarray:
    """How much more (percentage points) of ``source`` goes to ``target`` than, on average, to each other
    garment. ``by="row"``: of the ground-truth ``source`` pixels, the share predicted ``target``; ``by="column"``:
    of the pixels predicted ``source``, the share whose ground truth is ``target`` (Table 3's two matrices)."""
    m = _square(summed)
    shares = m[..., source, :] if by == "row" else m[..., :, source]
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = 100 * shares / shares.sum(-1, keepdims=True)
    others = [c for c in range(1, K) if c not in (source, target)]
    return shares[..., target] - shares[..., others].mean(-1)


def label_counts(present: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-image multilabel counts N×C×3 (TP, FP, FN per class) of presence vs prediction."""
    t, p = np.asarray(present, bool), np.asarray(predicted, bool)
    return np.stack([t & p, ~t & p, t & ~p], axis=-1).astype(np.float64)


def macro_f1(summed: np.ndarray) -> np.ndarray:
    """Macro F1 (percent) of summed label counts (…×C·3: :func:`label_counts`' rows, flattened); a class with
    nothing to find and nothing found scores 100, as in :func:`clothparse.evaluation.metrics.multilabel_scores`."""
    c = np.asarray(summed, dtype=np.float64).reshape(*np.shape(summed)[:-1], -1, 3)
    return 100 * _fbeta(c[..., 0], c[..., 1], c[..., 2], beta=1.0).mean(-1)


# --- the claims ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One claim of the paper. ``kind``: models (``a`` − ``b``, two models' plain evaluations), data
    (``a`` refined − base training data of model ``a``), injection (``a`` with GT − without), f1 (level of
    model ``a``), confusion (model ``a``: class ``source`` → ``target``, ``by`` row or column)."""

    table: str
    text: str
    kind: str
    a: str
    b: str | None = None
    source: str | None = None
    target: str | None = None
    by: str = "row"


_ORDER = ("extended_unet", "classbranch_only", "branches", "unet", "deeplabv3plus", "deeplabv3", "fpn")
CLAIMS: tuple[Claim, ...] = (
    *(Claim("Table 2", f"{a} > {b}", "models", a, b) for a, b in zip(_ORDER, _ORDER[1:])),
    Claim("Table 2", "extended_unet > unet (the paper's headline)", "models", "extended_unet", "unet"),
    Claim("Table 2", "classbranch_only > unet", "models", "classbranch_only", "unet"),
    Claim("Table 1", "refined > base training data (unet)", "data", "unet"),
    Claim("Table 5", "GT injection raises extended_unet", "injection", "extended_unet"),
    Claim("Table 4", "ClassBranch F1 of extended_unet", "f1", "extended_unet"),
    Claim("Table 3", "skirt → dress", "confusion", "extended_unet", source="skirt", target="dress"),
    Claim("Table 3", "dress → skirt", "confusion", "extended_unet", source="dress", target="skirt"),
    Claim("Table 3", "top → overtop", "confusion", "extended_unet", source="top", target="overtop"),
    Claim("Table 3", "overtop → top", "confusion", "extended_unet", source="overtop", target="top"),
    Claim("Table 3", "shorts → skirt", "confusion", "extended_unet", source="shorts", target="skirt"),
    Claim("Table 3", "predicted pants that are background", "confusion", "extended_unet", source="pants",
          target="background", by="column"),
)


#: The paper's headline: Our model ahead of the plain U-Net (73.38 against 72.10).
HEADLINE_CLAIM: Claim = next(c for c in CLAIMS if (c.kind, c.a, c.b) == ("models", "extended_unet", "unet"))


def paper_value(claim: Claim) -> float:
    """The claim's value in the paper's own tables, computed with the statistic that scores ours."""
    t = tables()
    if claim.kind == "models":
        return table2_row(claim.a)["iou_excl_bg"] - table2_row(claim.b)["iou_excl_bg"]
    if claim.kind == "data":
        t1 = t["table1_dataset_refinement"]
        return t1["Refined"]["iou_excl_bg"] - t1["Base"]["iou_excl_bg"]
    if claim.kind == "injection":
        t5 = t["table5_gt_injection"]
        return t5["With GT"]["iou_excl_bg"] - t5["Without GT"]["iou_excl_bg"]
    if claim.kind == "f1":
        return float(t["table4_classbranch"]["f1"])
    if claim.kind == "confusion":
        rows, columns = table3_matrices()
        matrix = rows if claim.by == "row" else columns
        return float(confusion_excess(matrix, CLASSES.index(claim.source), CLASSES.index(claim.target), claim.by))
    raise ValueError(f"unknown claim kind {claim.kind!r}")


# --- verdicts ------------------------------------------------------------------------------------------------
def seed_interval(values, confidence: float = 0.95) -> tuple[float, float] | None:
    """The t-interval of the mean of per-seed values; None with fewer than two seeds."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return None
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def verdict(paper: float, intervals: list[tuple[float, float]], level: bool = False) -> str:
    """agrees / contradicts / inconclusive by :data:`VERDICT_RULE`."""
    intervals = [iv for iv in intervals if np.all(np.isfinite(iv))]
    if not intervals:
        return "inconclusive"
    if level:
        inside = [lo <= paper <= hi for lo, hi in intervals]
        return "agrees" if all(inside) else "contradicts" if not any(inside) else "inconclusive"
    if abs(paper) < 0.05:
        return "inconclusive"
    sign = np.sign(paper)
    if all(lo * sign > 0 and hi * sign > 0 for lo, hi in intervals):
        return "agrees"
    if all(lo * sign < 0 and hi * sign < 0 for lo, hi in intervals):
        return "contradicts"
    return "inconclusive"


# --- our side: per-image counts of the runs ---------------------------------------------------------------------
@dataclass
class Evidence:
    """What one claim's interval is computed from: stacked per-image counts (all seeds of both sides), the
    statistic of their sums, and the per-seed values (for the spread over seeds)."""

    counts: np.ndarray
    statistic: object
    per_seed: list[float]


def confusions_of(run_dirs, split: str, variant: str = "plain") -> list[np.ndarray]:
    """Per-image confusion (N×K·K) of each run, checked to cover the same test images in the same order."""
    out, rows = [], None
    for run_dir in run_dirs:
        these, counts = RunDir(run_dir).evaluation(split).per_image(variant)
        if rows is not None and not np.array_equal(rows, these):
            raise ValueError(f"{run_dir} was evaluated on other test images than {run_dirs[0]}")
        rows = these
        out.append(counts.reshape(len(these), -1))
    return out


def mean_over_seeds(groups: int, width: int, fn):
    """A statistic that averages ``fn`` over ``groups`` blocks of ``width`` summed columns."""
    def statistic(summed):
        return np.mean([fn(summed[..., g * width:(g + 1) * width]) for g in range(groups)], axis=0)
    return statistic


def evidence(claim: Claim, profile, split: str = "test") -> Evidence:
    """The per-image counts and statistic of a claim on a profile's runs (all of its seeds)."""
    main = profile.main_variant
    kk = K * K
    if claim.kind in ("models", "data"):
        # models: a − b on the profile's data; data: model a on refined − on base training data
        (a, a_data), (b, b_data) = (((claim.a, main), (claim.b, main)) if claim.kind == "models"
                                    else ((claim.a, "refined"), (claim.a, "base")))
        left = confusions_of(select_runs(profile, a, a_data, split=split), split)
        right = confusions_of(select_runs(profile, b, b_data, split=split), split)
        a_stat, b_stat = mean_over_seeds(len(left), kk, pooled_excl_bg), mean_over_seeds(len(right), kk, pooled_excl_bg)
        split_at = len(left) * kk

        def diff(summed):
            return a_stat(summed[..., :split_at]) - b_stat(summed[..., split_at:])
        per_seed = [float(pooled_excl_bg(x.sum(0)) - pooled_excl_bg(y.sum(0))) for x, y in zip(left, right)]
        return Evidence(stack(*left, *right), diff, per_seed)
    seeds = select_runs(profile, claim.a, main, split=split)
    if claim.kind == "injection":
        with_gt, without = confusions_of(seeds, split, "gt"), confusions_of(seeds, split, "plain")
        n = len(seeds)
        stat = mean_over_seeds(n, kk, pooled_excl_bg)

        def gain(summed):
            return stat(summed[..., :n * kk]) - stat(summed[..., n * kk:])
        per_seed = [float(pooled_excl_bg(g.sum(0)) - pooled_excl_bg(p.sum(0))) for g, p in zip(with_gt, without)]
        return Evidence(stack(*with_gt, *without), gain, per_seed)
    if claim.kind == "f1":
        labels = [_label_counts_of(r, split).reshape(-1, len(CLOTHING) * 3) for r in seeds]
        return Evidence(stack(*labels), mean_over_seeds(len(labels), len(CLOTHING) * 3, macro_f1),
                        [float(macro_f1(x.sum(0))) for x in labels])
    if claim.kind == "confusion":
        src, tgt = CLASSES.index(claim.source), CLASSES.index(claim.target)
        cms = confusions_of(seeds, split)

        def excess(s):
            return confusion_excess(s, src, tgt, claim.by)
        return Evidence(stack(*cms), mean_over_seeds(len(cms), kk, excess), [float(excess(x.sum(0))) for x in cms])
    raise ValueError(f"unknown claim kind {claim.kind!r}")


def _label_counts_of(run_dir, split: str) -> np.ndarray:
    """TP/FP/FN per image and class of a run's ClassBranch (presence from the ground truth, logit > 0)."""
    ev = RunDir(run_dir).evaluation(split).require()
    if not ev.class_logits_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no ClassBranch outputs ({ev.class_logits_path})")
    per_image = pd.read_csv(ev.per_image_path)
    present = per_image[[f"gt_{c}" for c in CLOTHING]].to_numpy(bool)
    return label_counts(present, np.load(ev.class_logits_path) > 0)


# --- the table -------------------------------------------------------------------------------------------------
def claim_row(claim: Claim, profile, split: str = "test") -> dict:
    """One row of the claims table (raises FileNotFoundError when a run it needs is missing)."""
    ev = evidence(claim, profile, split)
    iv: Interval = image_bootstrap(ev.counts, ev.statistic)
    seeds = seed_interval(ev.per_seed)
    intervals = [(iv.low, iv.high)] + ([seeds] if seeds else [])
    paper = paper_value(claim)
    return {"table": claim.table, "claim": claim.text, "paper": paper, "ours": iv.estimate, "low": iv.low,
            "high": iv.high, "images": iv.n_images, "seeds": len(ev.per_seed),
            "seed sd": float(np.std(ev.per_seed, ddof=1)) if len(ev.per_seed) > 1 else np.nan,
            "seed low": seeds[0] if seeds else np.nan, "seed high": seeds[1] if seeds else np.nan,
            "verdict": verdict(paper, intervals, level=claim.kind == "f1")}


def _needs(claim: Claim, profile) -> list[str]:
    """What a claim needs that the profile does not train: '' when the profile has it all."""
    missing = [m for m in (claim.a, claim.b) if m and claim.kind != "data" and m not in profile.models]
    if claim.kind == "data" and not (profile.refines and claim.a in profile.table1_models):
        missing.append(f"{claim.a} on base data (the profile does not refine)")
    return missing


def claims_table(profile, split: str = "test") -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` the profile's runs can answer; the others are listed in
    ``df.attrs["not_run"]`` (claim → what is missing)."""
    profile = load_profile(profile)
    rows, not_run = [], {}
    for claim in CLAIMS:
        missing = _needs(claim, profile)
        if missing:
            not_run[claim.text] = "not in this profile: " + ", ".join(missing)
            continue
        try:
            rows.append(claim_row(claim, profile, split))
        except FileNotFoundError as err:
            not_run[claim.text] = str(err).split(";")[0]
    df = pd.DataFrame(rows, columns=["table", "claim", "paper", "ours", "low", "high", "images", "seeds", "seed sd",
                                     "seed low", "seed high", "verdict"])
    df.attrs["not_run"] = not_run
    return df
