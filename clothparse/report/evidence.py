"""The evidence pages: every model's IoUs with 95 % intervals over test images (and the spread over
training seeds), the claims table of :mod:`clothparse.evaluation.claims` ready to display, the two forest plots, and
the headline numbers the prose of the first and the results page is written from.
"""
from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clothparse.categories import CLASSES, SHORT_LABELS
from clothparse.evaluation.bootstrap import image_bootstrap, stack
from clothparse.evaluation.claims import (
    CLAIMS,
    HEADLINE_CLAIM,
    METRICS,
    claims_table,
    confusions_of,
    iou_scores,
    mean_over_seeds,
)
from clothparse.report.common import _profile, model_label
from clothparse.runs import select_runs

HEADLINE = METRICS[:3]
VERDICT_COLOURS = {"agrees": "#2a9d4b", "contradicts": "#c0392b", "inconclusive": "#8a8a8a"}
K = len(CLASSES)


def _model_rows(label: str, per_seed: list[np.ndarray]) -> list[dict]:
    """One row per metric of a model: the seed-mean on all test images, its interval, the seeds' spread."""
    n = len(per_seed)
    intervals = image_bootstrap(stack(*per_seed), mean_over_seeds(n, K * K, iou_scores))
    seed_values = np.array([iou_scores(x.sum(0)) for x in per_seed])
    sd = seed_values.std(0, ddof=1) if n > 1 else np.full(len(METRICS), np.nan)
    return [{"model": label, "metric": metric, "estimate": iv.estimate, "low": iv.low, "high": iv.high,
             "seeds": n, "seed sd": float(sd[i])} for i, (metric, iv) in enumerate(zip(METRICS, intervals))]


def model_intervals(profile, split: str = "test", variant: str | None = None) -> pd.DataFrame:
    """Long frame (model, metric, estimate, low, high, seeds, seed sd) for every evaluated model of the
    profile: the metric averaged over its seeds, its 95 % bootstrap interval over test images, and the
    standard deviation over seeds (NaN with one seed)."""
    p = _profile(profile)
    rows, missing = [], []
    for model in p.models:
        try:
            run_dirs = select_runs(p, model, variant or p.main_variant, split=split)
            rows += _model_rows(model_label(model), confusions_of(run_dirs, split))
        except FileNotFoundError:
            missing.append(model)
    df = pd.DataFrame(rows, columns=["model", "metric", "estimate", "low", "high", "seeds", "seed sd"])
    df.attrs["missing"] = missing
    return df


def _with_interval(estimate: float, low: float, high: float) -> str:
    return "—" if not np.isfinite(estimate) else f"{estimate:.2f} [{low:.2f}, {high:.2f}]"


def intervals_table(intervals: pd.DataFrame) -> pd.DataFrame:
    """The headline IoUs of :func:`model_intervals` as "estimate [low, high]", one row per model, with the
    number of seeds and the spread of IoU excl. bg over them."""
    head = intervals[intervals["metric"].isin(HEADLINE)]
    table = head.assign(text=[_with_interval(e, lo, hi) for e, lo, hi in head[["estimate", "low", "high"]]
                              .itertuples(index=False)]).pivot(index="model", columns="metric", values="text")
    table = table.reindex(index=list(dict.fromkeys(head["model"])), columns=list(HEADLINE))
    excl = head[head["metric"] == HEADLINE[0]].set_index("model")
    table["seeds"] = excl["seeds"].astype(int)
    table["seed sd (excl. bg)"] = [f"{v:.2f}" if np.isfinite(v) else "—" for v in excl["seed sd"]]
    table.columns.name = None
    return table


def figure_class_intervals(intervals: pd.DataFrame, ncols: int = 3):
    """Forest plots, one per class: each model's IoU with its 95 % interval over test images."""
    models = list(dict.fromkeys(intervals["model"]))
    classes = list(SHORT_LABELS)
    nrows = -(-len(classes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, nrows * (0.3 * len(models) + 1.0)), sharey=True,
                             squeeze=False)
    y = np.arange(len(models))[::-1]
    for ax, cls in zip(axes.flat, classes):
        part = intervals[intervals["metric"] == cls].set_index("model").reindex(models)
        est = part["estimate"].to_numpy(float)
        err = np.abs(np.vstack([est - part["low"].to_numpy(float), part["high"].to_numpy(float) - est]))
        ax.errorbar(est, y, xerr=err, fmt="o", ms=4, color="black", ecolor="0.4", capsize=2)
        ax.set_title(cls, fontsize=10)
        ax.set_yticks(y, [m.split(" (")[0] for m in models], fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(classes):]:
        ax.set_visible(False)
    fig.supxlabel("IoU (%) with its 95 % interval over test images", fontsize=9)
    fig.tight_layout()
    return fig


# --- claims ---------------------------------------------------------------------------------------------------
def claims_display(claims: pd.DataFrame) -> pd.DataFrame:
    """:func:`clothparse.evaluation.claims.claims_table` for reading: paper, ours [interval], seeds, verdict."""
    out = pd.DataFrame({
        "table": claims["table"], "claim": claims["claim"],
        "paper": [f"{v:+.2f}" if t != "Table 4" else f"{v:.2f}" for v, t in zip(claims["paper"], claims["table"])],
        "ours [95 % interval]": [_with_interval(e, lo, hi) for e, lo, hi in
                                 claims[["ours", "low", "high"]].itertuples(index=False)],
        "seeds (sd)": [f"{n}" if n < 2 else f"{n} ({sd:.2f})" for n, sd in claims[["seeds", "seed sd"]]
                       .itertuples(index=False)],
        "verdict": claims["verdict"],
    })
    return out.set_index(["table", "claim"])


def figure_claims(claims: pd.DataFrame):
    """Forest plot of the difference claims: ours with its interval (coloured by verdict), the paper's value."""
    diffs = claims[claims["table"] != "Table 4"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(diffs) + 1.2))
    y = np.arange(len(diffs))[::-1]
    for yi, row in zip(y, diffs.itertuples(index=False)):
        colour = VERDICT_COLOURS.get(row.verdict, "black")
        ax.errorbar(row.ours, yi, xerr=[[row.ours - row.low], [row.high - row.ours]], fmt="o", color=colour,
                    capsize=3)
        ax.plot(row.paper, yi, marker="D", color="#1f5fa8", ms=5, ls="none")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, [f"{t}: {c}" for t, c in zip(diffs["table"], diffs["claim"])], fontsize=8)
    ax.set_xlabel("points (difference, or excess share for Table 3)")
    handles = [plt.Line2D([], [], marker="D", color="#1f5fa8", ls="none", label="paper")]
    handles += [plt.Line2D([], [], marker="o", color=c, label=f"ours: {v}") for v, c in VERDICT_COLOURS.items()]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


_SAYS = {"agrees": "this build agrees with the paper", "contradicts": "this build contradicts the paper",
         "inconclusive": "this build cannot tell (its interval does not settle the sign)"}


def headline_sentence(h: dict, profile_name: str) -> str:
    """The findings in two sentences, every number from :func:`headline` (plain text, for MyST-NB's glue)."""
    if not h:
        return (f"Profile {profile_name} does not evaluate both Our model and the plain U-Net, so the paper's "
                "headline claim is not tested on this build.")
    seeds = "1 training seed" if h["seeds"] == 1 else f"{h['seeds']} training seeds (mean)"
    return (f"On this build ({profile_name}, {h['images']} test images, {seeds}), Our model scores "
            f"{h['ours']:.2f} [{h['ours_low']:.2f}, {h['ours_high']:.2f}] % IoU excl. bg against the plain U-Net's "
            f"{h['unet']:.2f} [{h['unet_low']:.2f}, {h['unet_high']:.2f}]: a difference of {h['diff']:+.2f} "
            f"[{h['diff_low']:+.2f}, {h['diff_high']:+.2f}] points where the paper reports {h['paper_diff']:+.2f}, "
            f"so {_SAYS[h['verdict']]} (95 % intervals over test images). Of the {h['n_claims']} claims this build "
            f"tests, {_count(h['n_agrees'], 'agrees', 'agree')}, "
            f"{_count(h['n_contradicts'], 'contradicts', 'contradict')} and "
            f"{_count(h['n_inconclusive'], 'is inconclusive', 'are inconclusive')}.")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def headline(claims: pd.DataFrame, intervals: pd.DataFrame) -> dict:
    """The numbers of the prose: Our model and the plain U-Net with their intervals, their difference with
    its interval and verdict, the paper's difference, and the counts of verdicts. Empty without both models."""
    row = claims[claims["claim"] == HEADLINE_CLAIM.text]
    excl = intervals[intervals["metric"] == HEADLINE[0]].set_index("model")
    ours, unet = model_label("extended_unet"), model_label("unet")
    if row.empty or ours not in excl.index or unet not in excl.index:
        return {}
    r = row.iloc[0]
    counts = claims["verdict"].value_counts()
    return {
        "ours": excl.loc[ours, "estimate"], "ours_low": excl.loc[ours, "low"], "ours_high": excl.loc[ours, "high"],
        "unet": excl.loc[unet, "estimate"], "unet_low": excl.loc[unet, "low"], "unet_high": excl.loc[unet, "high"],
        "diff": r["ours"], "diff_low": r["low"], "diff_high": r["high"], "paper_diff": r["paper"],
        "verdict": r["verdict"], "seeds": int(r["seeds"]), "images": int(r["images"]),
        "n_claims": int(len(claims)),
        **{f"n_{v}": int(counts.get(v, 0)) for v in VERDICT_COLOURS},
    }


# --- the claims across builds ----------------------------------------------------------------------------------
def claims_by_profile(profile, others=("default", "ccp"), split: str = "test",
                      table: pd.DataFrame | None = None) -> dict:
    """Profile name → :func:`clothparse.evaluation.claims.claims_table`: this profile's first (``table`` when
    already computed), then each of ``others`` (names, paths or profiles) whose runs answer at least one claim;
    a profile without evaluated runs (or whose file is missing) is left out."""
    p = _profile(profile)
    tables = {p.name: claims_table(p, split) if table is None else table}
    for other in others:
        try:
            q = _profile(other)
        except (FileNotFoundError, ValueError):
            continue
        if q.name in tables or not q.runs_path.is_dir():
            continue
        try:
            t = claims_table(q, split)
        except (ValueError, KeyError) as err:
            # another build's broken evaluation must not take this build's page down with it
            warnings.warn(f"claims of profile {q.name!r} left out: {err}", stacklevel=2)
            continue
        if len(t):
            tables[q.name] = t
    return tables


def claims_across(tables: dict) -> pd.DataFrame:
    """One table of :func:`claims_by_profile`'s tables: the paper's value, then per profile (a column level)
    ours with its 95 % interval and the verdict; "—" where a profile does not test a claim. (Each build's
    seeds are on its own claims table: a column more per build would not fit the page.)
    Rows are the claims in the order of :data:`clothparse.evaluation.claims.CLAIMS`."""
    displays = {name: claims_display(t) for name, t in tables.items() if len(t)}
    order = [(c.table, c.text) for c in CLAIMS]
    index = pd.MultiIndex.from_tuples([k for k in order if any(k in d.index for d in displays.values())],
                                      names=["table", "claim"])
    paper = pd.concat([d["paper"] for d in displays.values()]).groupby(level=[0, 1]).first()
    parts = {("paper", ""): paper.reindex(index)}
    for name, d in displays.items():
        for column in ("ours [95 % interval]", "verdict"):
            parts[(name, column)] = d[column].reindex(index)
    out = pd.DataFrame(parts, index=index).fillna("—")
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["build", ""])
    return out


def absent_builds(tables: dict, others) -> list[str]:
    """The names of ``others`` that :func:`claims_by_profile` left out (no evaluated runs on this machine)."""
    names = []
    for other in others:
        try:
            name = _profile(other).name
        except (FileNotFoundError, ValueError):
            name = str(other)
        if name not in tables and name not in names:
            names.append(name)
    return names
