"""Our model against its own baseline, from the runs' training histories: the gap of validation IoU excl. bg
to the plain U-Net epoch by epoch (does it close with training?), each weighted loss term's share of the
compound loss (does one term drown the others?), and the paragraph of the evidence page, every number of it
taken from those tables.

The paper reports Our model 1.28 points above the plain U-Net (ClassBranch only +0.91, Branches +0.62) after
its full schedule; a build that trains far shorter may simply stop before the branches pay off. The history's
``iou_excl_bg`` is the pooled IoU on the *validation* split after each epoch (the claims are on the test split).
"""
from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from clothparse.evaluation.claims import CLAIMS, claim_row, paper_value, seed_interval
from clothparse.report.common import _profile, model_label
from clothparse.runs import RunDir, loss_weights, newest_runs, run_seed

__all__ = ["BASELINE", "CONTENDERS", "TERMS", "DOMINANT_SHARE", "valid_iou", "gap_by_epoch", "gap_table",
           "gap_summary", "gap_sentence", "figure_gap", "loss_shares", "profile_loss_shares",
           "shares_table", "dominant_terms", "figure_loss_shares", "pair_claims", "evidence_paragraph",
           "paragraph_numbers", "has_runs", "thin_epochs", "dominance_sentence"]

BASELINE = "unet"
#: Our model and the paper's two ablations, each compared with the plain U-Net.
CONTENDERS = ("extended_unet", "classbranch_only", "branches")
TERMS = ("seg", "cls", "box")
#: A term whose share of the compound loss exceeds this (percent) dominates it.
DOMINANT_SHARE = 60.0
#: Change of the gap (points) over the last third of training below which it "stays".
STEADY = 0.1
SEED_INTERVAL = "95 % t-interval over seeds"
CLAIM_COLUMNS = ["table", "claim", "paper", "ours", "low", "high", "images", "seeds", "seed sd", "seed low",
                 "seed high", "verdict"]



def _comparison(model: str) -> str:
    return f"{model_label(model).split(' (')[0]} − {model_label(BASELINE).split(' (')[0]}"


def has_runs(profile) -> bool:
    """Whether the profile has a complete run of the plain U-Net and of one contender (its gap can be drawn)."""
    p = _profile(profile)
    return bool(_runs_by_seed(p, BASELINE)) and any(_runs_by_seed(p, m) for m in CONTENDERS if m in p.models)


# --- the gap ------------------------------------------------------------------------------------------------
def valid_iou(run_dir) -> pd.Series:
    """Validation pooled IoU excl. bg (percent) after each epoch of a run, indexed by epoch (1, 2, …)."""
    h = pd.read_csv(RunDir(run_dir).history_path)
    return pd.Series(100 * h["iou_excl_bg"].to_numpy(float), index=pd.Index(h["global_epoch"] + 1, name="epoch"),
                     name="iou_excl_bg")


def _runs_by_seed(profile, model: str) -> dict:
    """Seed → the newest complete run of ``model`` with the profile's parameters (evaluated or not)."""
    if model not in profile.models:
        return {}
    try:
        found = newest_runs(profile, model, profile.main_variant, evaluated=False)
    except FileNotFoundError:
        return {}
    return {run_seed(RunDir(r).params()): r for r in found}


def gap_by_epoch(profile) -> pd.DataFrame:
    """Per contender and epoch: the mean over seeds of (contender − plain U-Net) validation IoU excl. bg, each
    seed's contender paired with the plain U-Net of the same seed; ``low``/``high`` the 95 % t-interval over
    seeds (NaN with one seed, where the line stands alone). Epochs not every seed reached are left out.
    ``attrs["missing"]``: contenders of the profile without runs to compare."""
    p = _profile(profile)
    base = _runs_by_seed(p, BASELINE)
    rows, missing = [], []
    for model in (m for m in CONTENDERS if m in p.models):
        mine = _runs_by_seed(p, model)
        seeds = [s for s in p.seeds_for(model) if s in mine and s in base]
        if not seeds:
            missing.append(model)
            continue
        per_seed = pd.concat([valid_iou(mine[s]) - valid_iou(base[s]) for s in seeds], axis=1, keys=seeds).dropna()
        paper = paper_value(next(c for c in CLAIMS if (c.kind, c.a, c.b) == ("models", model, BASELINE)))
        for epoch, values in per_seed.iterrows():
            iv = seed_interval(values.to_numpy()) or (math.nan, math.nan)
            rows.append({"comparison": _comparison(model), "model": model, "epoch": int(epoch), "seeds": len(seeds),
                         "gap": float(values.mean()), "low": iv[0], "high": iv[1], "paper": paper})
    df = pd.DataFrame(rows, columns=["comparison", "model", "epoch", "seeds", "gap", "low", "high", "paper"])
    df.attrs["missing"] = missing
    return df


def _points(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:+.2f}"


def _gap_text(gap: float, low: float, high: float) -> str:
    return _points(gap) + (f" [{low:+.2f}, {high:+.2f}]" if np.isfinite(low) else "")


def gap_table(gap: pd.DataFrame) -> pd.DataFrame:
    """:func:`gap_by_epoch` for reading: one row per epoch, one column per comparison, "gap [low, high]"
    (points; the interval only with several seeds)."""
    text = gap.assign(text=[_gap_text(g, lo, hi) for g, lo, hi in gap[["gap", "low", "high"]]
                            .itertuples(index=False)])
    table = text.pivot(index="epoch", columns="comparison", values="text")
    table = table.reindex(columns=list(dict.fromkeys(gap["comparison"]))).fillna("—")
    table.columns.name = None
    return table


def _trend(start: float, end: float) -> str:
    if end > 0:
        return "closes" if start <= 0 else "ahead"
    change = end - start
    return "narrows" if change > STEADY else "widens" if change < -STEADY else "stays"


def gap_summary(gap: pd.DataFrame) -> pd.DataFrame:
    """Per comparison: seeds, epochs, the gap after the first epoch, at the start of the last third of training
    (epoch index ⌊2n/3⌋), at the end (with its interval over seeds), the mean over the last third, the change
    over it, the paper's gap and a trend: *ahead* (above the baseline through the last third), *closes*
    (crosses to above it), *narrows* (still below, by more than :data:`STEADY` points less), *stays*,
    *widens*."""
    rows = []
    for comparison, g in gap.groupby("comparison", sort=False):
        g = g.sort_values("epoch").reset_index(drop=True)
        last = g.iloc[len(g) * 2 // 3:]
        start, end = float(last["gap"].iloc[0]), float(g["gap"].iloc[-1])
        rows.append({"comparison": comparison, "seeds": int(g["seeds"].iloc[0]), "epochs": len(g),
                     "first epoch": float(g["gap"].iloc[0]), "last third from epoch": int(last["epoch"].iloc[0]),
                     "at its start": start, "final": end, "final low": float(g["low"].iloc[-1]),
                     "final high": float(g["high"].iloc[-1]), "last-third mean": float(last["gap"].mean()),
                     "change over last third": end - start, "paper": float(g["paper"].iloc[0]),
                     "trend": _trend(start, end)})
    return pd.DataFrame(rows, columns=["comparison", "seeds", "epochs", "first epoch", "last third from epoch",
                                       "at its start", "final", "final low", "final high", "last-third mean",
                                       "change over last third", "paper", "trend"]).set_index("comparison")


_TREND_WORDS = {"ahead": "stays ahead of the plain U-Net", "closes": "closes the gap and ends ahead",
                "narrows": "is still behind, though the gap narrows", "stays": "stays behind by about as much",
                "widens": "falls further behind"}


def gap_sentence(summary: pd.DataFrame) -> str:
    """One sentence per comparison saying whether the gap closes in the last third of training (plain text)."""
    if summary.empty:
        return "No contender and plain U-Net pair was trained on this build, so there is no gap to follow."
    out = []
    for comparison, r in summary.iterrows():
        interval = (f" [{r['final low']:+.2f}, {r['final high']:+.2f}] ({SEED_INTERVAL}, {r['seeds']} seeds)"
                    if np.isfinite(r["final low"]) else " (one seed: the line alone, no interval)")
        out.append(f"{comparison}: {_points(r['first epoch'])} points after epoch 1, {_points(r['at its start'])} "
                   f"at epoch {r['last third from epoch']} (the start of the last third of training) and "
                   f"{_points(r['final'])}{interval} after the last epoch ({r['epochs']}), against the paper's "
                   f"{_points(r['paper'])}: over the last third it {_TREND_WORDS[r['trend']]} "
                   f"({_points(r['change over last third'])} points).")
    return " ".join(out)


def figure_gap(gap: pd.DataFrame, title: str | None = None):
    """The gap per epoch, one line per comparison, its interval over seeds shaded, the paper's gap dashed."""
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    for i, (comparison, g) in enumerate(gap.groupby("comparison", sort=False)):
        colour = f"C{i}"
        one = g["seeds"].iloc[0] == 1
        ax.plot(g["epoch"], g["gap"], marker="o", ms=4, color=colour,
                label=f"{comparison} ({'1 seed' if one else str(g['seeds'].iloc[0]) + ' seeds, mean'})")
        if not one:
            ax.fill_between(g["epoch"], g["low"], g["high"], color=colour, alpha=0.2, lw=0)
        ax.axhline(g["paper"].iloc[0], color=colour, ls="--", lw=1)
    if not gap.empty:
        n = int(gap["epoch"].max())
        ax.axvspan(n - (n - n * 2 // 3) + 0.5, n + 0.5, color="0.9", zorder=0)
        ax.text(n + 0.45, 0.02, "last third", transform=ax.get_xaxis_transform(), ha="right", fontsize=7,
                color="0.4")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("Δ valid IoU excl. bg (points)")
    shaded = "one seed: no interval" if gap.empty or (gap["seeds"] == 1).all() else f"shaded: {SEED_INTERVAL}"
    ax.set_title(title or f"gap to the plain U-Net on the validation split (dashed: the paper's; {shaded})",
                 fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


# --- the loss terms' shares -------------------------------------------------------------------------------
def loss_shares(run_dir) -> pd.DataFrame:
    """Per epoch and part (train, valid) and loss term of a run: the term as recorded (``history.csv`` keeps
    the *unweighted* term, :attr:`CompoundLoss.last_terms`), its weight, the weighted term and its share (%)
    of their sum. ``attrs["total_error"]``: the largest relative difference between that sum and the
    recorded total (``train_total``/``valid_total``), which checks the weights; ``attrs["weights"]``."""
    run = RunDir(run_dir)
    h = pd.read_csv(run.history_path)
    weights = loss_weights(run.params())
    rows, error = [], 0.0
    for part in ("train", "valid"):
        terms = [t for t in TERMS if f"{part}_{t}" in h and h[f"{part}_{t}"].notna().any()]
        if not terms:
            continue
        weighted = pd.DataFrame({t: weights[t] * h[f"{part}_{t}"].to_numpy(float) for t in terms})
        total = weighted.sum(axis=1)
        if f"{part}_total" in h:
            recorded = h[f"{part}_total"].to_numpy(float)
            error = max(error, float(np.nanmax(np.abs(total - recorded) / np.abs(recorded))))
        for i, epoch in enumerate(h["global_epoch"] + 1):
            for t in terms:
                rows.append({"epoch": int(epoch), "part": part, "term": t, "value": float(h[f"{part}_{t}"].iloc[i]),
                             "weight": weights[t], "weighted": float(weighted[t].iloc[i]),
                             "share": float(100 * weighted[t].iloc[i] / total.iloc[i])})
    df = pd.DataFrame(rows, columns=["epoch", "part", "term", "value", "weight", "weighted", "share"])
    df.attrs.update(total_error=error, weights=weights)
    return df


def profile_loss_shares(profile) -> pd.DataFrame:
    """:func:`loss_shares` of every seed of each branch model of the profile (model, seed columns added).
    ``attrs["total_error"]``: the largest over the runs."""
    p = _profile(profile)
    frames, error = [], 0.0
    for model in CONTENDERS:
        for seed, run_dir in _runs_by_seed(p, model).items():
            s = loss_shares(run_dir)
            error = max(error, s.attrs["total_error"])
            frames.append(s.assign(model=model, seed=seed))
    cols = ["model", "seed", "epoch", "part", "term", "value", "weight", "weighted", "share"]
    df = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    df.attrs["total_error"] = error
    return df


def shares_table(shares: pd.DataFrame, threshold: float = DOMINANT_SHARE) -> pd.DataFrame:
    """Each weighted term's share (%) of the compound loss, mean over seeds, one row per (model, part, epoch),
    a column per term, and ``dominant``: the term whose share exceeds ``threshold`` ("" if none)."""
    if shares.empty:
        return pd.DataFrame(columns=[*TERMS, "dominant"])
    mean = shares.groupby(["model", "part", "epoch", "term"], sort=False)["share"].mean()
    table = mean.unstack("term").reindex(columns=[t for t in TERMS if t in set(shares["term"])])
    order = {m: i for i, m in enumerate(CONTENDERS)}
    table = table.sort_index(key=lambda ix: ix.map(order) if ix.name == "model" else ix)
    table["dominant"] = [next((t for t in TERMS if t in row and row[t] > threshold), "") for _, row in
                         table.iterrows()]
    table.index = table.index.set_levels(
        [model_label(m).split(" (")[0] for m in table.index.levels[0]], level="model")
    table.columns.name = None
    return table


def dominant_terms(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, part, term) that dominates some epoch of :func:`shares_table`: in how many epochs, and its
    largest share."""
    rows = []
    for (model, part), g in ([] if table.empty else table.groupby(level=["model", "part"], sort=False)):
        for term in TERMS:
            hit = g[g["dominant"] == term]
            if len(hit):
                rows.append({"model": model, "part": part, "term": term, "epochs": len(hit), "of": len(g),
                             "largest share": float(hit[term].max())})
    return pd.DataFrame(rows, columns=["model", "part", "term", "epochs", "of", "largest share"])


def figure_loss_shares(shares: pd.DataFrame, threshold: float = DOMINANT_SHARE):
    """Stacked shares of the weighted loss terms per epoch: a column per branch model, a row for train and
    valid; a panel's title names a term whose share exceeds ``threshold`` in some epoch."""
    table = shares_table(shares, threshold)
    models = list(dict.fromkeys(table.index.get_level_values("model")))
    parts = ["train", "valid"]
    fig, axes = plt.subplots(2, max(len(models), 1), figsize=(4.2 * max(len(models), 1), 5.4), squeeze=False,
                             sharey=True, layout="constrained")
    labels = {"seg": "segmentation (WCE)", "cls": "ClassBranch (BCE)", "box": "BBBranch (smooth L1)"}
    for j, model in enumerate(models):
        for i, part in enumerate(parts):
            ax = axes[i, j]
            if (model, part) not in table.index.droplevel("epoch"):
                ax.set_visible(False)
                continue
            t = table.loc[(model, part)]
            terms = [c for c in TERMS if c in t and t[c].notna().any()]
            ax.stackplot(t.index, *[t[c].fillna(0) for c in terms], labels=[labels[c] for c in terms],
                         colors=[f"C{TERMS.index(c)}" for c in terms], alpha=0.85)
            ax.set_ylim(0, 100)
            over = [c for c in terms if (t["dominant"] == c).any()]
            ax.set_title(f"{model}: {part}" + (f" ({', '.join(over)} above {threshold:.0f} %)" if over else ""),
                         fontsize=9)
            ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel("share of the loss (%)")
    if models:
        axes[0, 0].legend(fontsize=7, loc="lower left")
    return fig


# --- the claims of the pair and the paragraph -------------------------------------------------------------
def pair_claims(profile, split: str = "test") -> pd.DataFrame:
    """The claims table's rows (:func:`clothparse.evaluation.claims.claim_row`) of each contender against the
    plain U-Net; ``attrs["not_run"]`` as in :func:`~clothparse.evaluation.claims.claims_table`."""
    p = _profile(profile)
    rows, not_run = [], {}
    for model in CONTENDERS:
        claim = next(c for c in CLAIMS if (c.kind, c.a, c.b) == ("models", model, BASELINE))
        if model not in p.models or BASELINE not in p.models:
            not_run[claim.text] = "not in this profile"
            continue
        try:
            rows.append(claim_row(claim, p, split))
        except FileNotFoundError as err:
            not_run[claim.text] = str(err).split(";")[0]
    df = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    df.attrs["not_run"] = not_run
    return df


_VERDICT_WORDS = {"agrees": "agrees with the paper", "contradicts": "contradicts the paper",
                  "inconclusive": "cannot settle the sign"}


def evidence_paragraph(claims: pd.DataFrame, summary: pd.DataFrame, shares: pd.DataFrame, profile_name: str) -> str:
    """What the evidence supports, in one paragraph: the headline claim (paper, ours with its interval,
    verdict), the gap's course in training, and the loss term that dominates; every number is the one
    :func:`clothparse.report.claims_display`, :func:`gap_summary` and :func:`shares_table` show, rounded
    as they show it."""
    ours = _comparison("extended_unet")
    head = claims[claims["claim"].str.startswith("extended_unet > unet")]
    if head.empty:
        text = [f"Profile {profile_name} has no evaluated pair of Our model and the plain U-Net, so this page "
                "cannot say whether Our model beats it on the test split here."]
    else:
        r = head.iloc[0]
        seeds = "one training seed, so the spread of training is not measured" if r["seeds"] == 1 else \
            f"{int(r['seeds'])} training seeds"
        text = [f"On this build ({profile_name}, {seeds}) Our model − plain U-Net is {r['ours']:.2f} "
                f"[{r['low']:.2f}, {r['high']:.2f}] points of test IoU excl. bg (95 % interval over test images) "
                f"where the paper reports {r['paper']:+.2f}: this build {_VERDICT_WORDS[r['verdict']]}."]
    if ours in summary.index:
        s = summary.loc[ours]
        text.append(f"On the validation split the gap is {s['first epoch']:+.2f} after epoch 1, "
                    f"{s['at its start']:+.2f} at epoch {s['last third from epoch']} and {s['final']:+.2f} after "
                    f"epoch {s['epochs']}" + (" (one seed, no interval)" if s["seeds"] == 1 else
                                              f" [{s['final low']:+.2f}, {s['final high']:+.2f}] ({SEED_INTERVAL})")
                    + f": over the last third of training it {_TREND_WORDS[s['trend']]} "
                    f"({s['change over last third']:+.2f} points).")
    if not shares.empty:
        label = model_label("extended_unet").split(" (")[0]
        table = shares_table(shares)
        if label in table.index.get_level_values("model"):
            train = table.loc[(label, "train")]
            final = train.iloc[-1]
            parts = [f"{t} is {final[t]:.1f} %" for t in TERMS if t in final and np.isfinite(final[t])]
            terms = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
            top = max((t for t in TERMS if t in train), key=lambda t: train[t].max())
            largest = float(train[top].max())
            text.append(f"Of Our model's weighted loss terms (the paper meant them to contribute about evenly, a third "
                        f"each), in the last epoch of training {terms} of the loss; the largest share a term reaches "
                        f"is {top}'s {largest:.1f} %, " + ("above" if largest > DOMINANT_SHARE else "not above")
                        + f" the {DOMINANT_SHARE:.0f} % at which a term dominates.")
    verdict = None if head.empty else head.iloc[0]["verdict"]
    trend = summary.loc[ours, "trend"] if ours in summary.index else None
    text.append(_conclusion(verdict, trend))
    return " ".join(text)


def _conclusion(verdict: str | None, trend: str | None) -> str:
    """What the claim and the gap's course support together, in a sentence."""
    if verdict is None:
        return "Without the test-split claim the training curves above are the only evidence here."
    if verdict == "agrees":
        return "The evidence supports the paper's headline on this build."
    later = {"narrows": "but the gap shrinks at the end of training, so a longer schedule may change the answer",
             "closes": "but the gap closes at the end of training, so the short schedule may be all that is behind it",
             "stays": "and the gap does not close at the end of training",
             "widens": "and the gap widens at the end of training",
             "ahead": "though on the validation split Our model is ahead at the end of training"}.get(trend, "")
    if verdict == "contradicts":
        return ("The evidence supports a deficit of Our model on this build, not the paper's gain"
                + (f", {later}." if later else "."))
    return ("This build cannot tell Our model from the plain U-Net on the test split"
            + (f", {later}." if later else "."))


def paragraph_numbers(text: str) -> list[float]:
    """The numbers a paragraph states, in order (for tests: each must be one a table shows)."""
    return [float(x) for x in re.findall(r"[+-]?\d+(?:\.\d+)?", text)]


def thin_epochs(table: pd.DataFrame, at_most: int = 8) -> pd.DataFrame:
    """The rows of at most ``at_most`` epochs, evenly spread, the first and the last included (a table indexed
    by epoch, or with an ``epoch`` level): a 30-epoch schedule read at a glance."""
    epochs = table.index.get_level_values("epoch")
    unique = np.unique(epochs)
    if len(unique) <= at_most:
        return table
    keep = unique[np.unique(np.linspace(0, len(unique) - 1, at_most).round().astype(int))]
    return table[epochs.isin(keep)]


def dominance_sentence(dominant: pd.DataFrame) -> str:
    """:func:`dominant_terms` in words."""
    if dominant.empty:
        return f"No weighted term is above {DOMINANT_SHARE:.0f} % of the loss in any epoch."
    return "Terms that dominate the loss: " + "; ".join(
        f"{r['model']} ({r['part']}): {r['term']} in {r['epochs']} of {r['of']} epochs, up to "
        f"{r['largest share']:.1f} %" for r in dominant.to_dict("records")) + "."
