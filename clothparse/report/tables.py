"""Tables 1, 2, 4 and 5 of the paper, ours beside the paper's: the IoU comparisons (Table 1: base vs
refined data; Table 2: every model; Table 5: ground-truth injection) and the ClassBranch scores
(Table 4). Table 3 (confusion matrices) is in :mod:`.confusion_matrices`.

A comparison puts *ours*, the *paper*'s number and their difference on separate rows (a row index
``(…, source)``); a row exists only where there is a number to show. The difference row exists only where the
data is the paper's (:func:`compares_with_paper`): on synthetic data or CCP *ours − paper* would measure the data,
not the method, so there ours stands beside the paper's and the claims page says what can be compared. Where a
profile trains several seeds (``train.seeds``), Tables 1 and 2 show the mean over seeds as *ours* and their
standard deviation as *seed sd*, and ``df.attrs["n_seeds"]`` says how many seeds each row has.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clothparse.categories import CLASSES, CLOTHING, SHORT_LABELS
from clothparse.evaluation.metrics import PAPER_F_AVERAGE, iou_summary
from clothparse.evaluation.paper import TABLE2_MODEL_NAMES, table2_row, tables
from clothparse.report.common import (
    DIFF,
    IOU_COLUMNS,
    IOU_GROUPS,
    MIOU,
    OURS,
    PAPER,
    SEED_SD,
    _no_nan,
    _profile,
    _variant_summary,
    eval_metrics,
    grouped,
    model_label,
)
from clothparse.runs import RunDir, select_run, select_runs

#: Injection variants of :mod:`clothparse.evaluation.evaluate` → Table 5 row labels (paper rows where the paper has
#: them).
TABLE5_ROWS: tuple[tuple[str, str, str | None], ...] = (
    ("plain", "Without GT", "Without GT"),
    ("gt", "With GT", "With GT"),
    ("gt_hard", "With GT, absent classes forbidden", None),
    ("no_dress", "'no dress' prior only (dress entry from GT)", None),
)


# --- the comparison frame ------------------------------------------------------------------------------
def _ours_iou(summary: dict) -> dict:
    pc = summary["per_class"]
    return {"IoU excl. bg": summary["pooled_excl_bg"], "IoU overall": summary["pooled_overall"],
            "IoU Mask": summary["mask"], **{lab: pc[name] for lab, name in zip(SHORT_LABELS, CLASSES)},
            MIOU: summary["mean_excl_bg"]}


def _paper_iou(entry: dict) -> dict:
    pc = list(entry["per_class"])
    row = {lab: float(v) for lab, v in zip(SHORT_LABELS, pc)}
    row["IoU excl. bg"] = entry["iou_excl_bg"]
    if "iou_overall" in entry:
        row["IoU overall"], row["IoU Mask"] = entry["iou_overall"], entry["iou_mask"]
    # The paper prints no mean IoU; its per-class IoUs give it exactly (for contrast with the pooled one).
    row[MIOU] = float(np.mean(pc[1:]))
    return row


def _over_seeds(rows: Sequence[dict]) -> tuple[dict, dict | None]:
    """One row per seed → their per-column mean and standard deviation (ddof=1); one seed: that row, no sd."""
    if len(rows) == 1:
        return rows[0], None
    df = pd.DataFrame(list(rows), dtype=float)
    return df.mean().to_dict(), df.std(ddof=1).to_dict()


def compares_with_paper(profile) -> bool:
    """Whether the profile's numbers can be subtracted from the paper's: only on the paper's data
    (``data.kind: imaterialist``); elsewhere a difference measures the data, not the method."""
    return _profile(profile).data.kind == "imaterialist"


def paper_comparison_note(profile) -> str:
    """One sentence for a page whose tables show no *ours − paper* row ("" where they do). It names the Claims
    page without linking it: Sphinx resolves links in a page's markdown cells, not in its outputs."""
    p = _profile(profile)
    if compares_with_paper(p):
        return ""
    return (f"Profile `{p.name}` trains on {p.data.kind} data, not the paper's iMaterialist, so its numbers stand "
            "beside the paper's without a difference row: what this build can say about the paper's claims — "
            "differences between models, measured on the same data — is on the Claims page.")


def _comparison(blocks: Sequence[tuple], columns: Sequence[str],
                names: tuple[str, str] = ("model", "source"), diff: bool = True) -> pd.DataFrame:
    """Blocks ``(label, ours, paper[, seed_sd])`` → rows ``(label, ours)``, ``(label, seed sd)`` where there is
    one, and where the paper has numbers ``(label, paper)`` and, with ``diff``, ``(label, ours − paper)``."""
    rows, index = [], []
    for label, ours, paper, *sd in blocks:
        o = {c: ours.get(c, np.nan) for c in columns}
        rows.append(o)
        index.append((label, OURS))
        if sd and sd[0] is not None:
            rows.append({c: sd[0].get(c, np.nan) for c in columns})
            index.append((label, SEED_SD))
        if paper is not None:
            pp = {c: paper.get(c, np.nan) for c in columns}
            rows.append(pp)
            index.append((label, PAPER))
            if diff:
                rows.append({c: o[c] - pp[c] for c in columns})
                index.append((label, DIFF))
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=list(names)), columns=list(columns),
                      dtype=float)
    return _no_nan(df)


# --- Table 2 ---------------------------------------------------------------------------------------------
def _seeds_iou(run_dirs: Sequence, split: str) -> tuple[dict, dict | None]:
    """The plain IoUs of the runs of one model's seeds: mean, and standard deviation where there are several."""
    return _over_seeds([_ours_iou(_variant_summary(r, split, "plain")) for r in run_dirs])


def _table2_block(model: str, run_dirs: Sequence, split: str) -> tuple[str, dict, dict | None, dict | None]:
    ours, sd = _seeds_iou(run_dirs, split)
    paper = _paper_iou(table2_row(model)) if model in TABLE2_MODEL_NAMES.values() else None
    return model_label(model), ours, paper, sd


def table2(profile, split: str = "test", models: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 2: every model of the profile (main variant), IoUs on ``split`` beside the paper's.

    Columns :data:`IOU_COLUMNS`; the pooled "IoU excl. bg"/"IoU overall" are the paper's metrics,
    "mIoU excl. bg (mean)" the usual mean of per-class IoUs (the paper's row: the mean of its
    per-class numbers). Models without an evaluated run are left out and listed in ``df.attrs["missing"]``.
    With several seeds, *ours* is their mean and *seed sd* their spread; ``df.attrs["n_seeds"]``: label → seeds.
    """
    p = _profile(profile)
    models = list(models) if models is not None else list(p.models)
    papers = set(TABLE2_MODEL_NAMES.values())
    order = [m for m in TABLE2_MODEL_NAMES.values() if m in models] + [m for m in models if m not in papers]
    blocks, missing, n_seeds = [], [], {}
    for model in order:
        try:
            run_dirs = select_runs(p, model, p.main_variant, split=split)
        except FileNotFoundError:
            missing.append(model)
            continue
        blocks.append(_table2_block(model, run_dirs, split))
        n_seeds[blocks[-1][0]] = len(run_dirs)
    if not blocks:
        raise FileNotFoundError(f"profile {p.name!r}: no evaluated run of any of {models} in {p.runs_path}")
    df = grouped(_comparison(blocks, IOU_COLUMNS, diff=compares_with_paper(p)), IOU_GROUPS)
    df.attrs.update(missing=missing, n_seeds=n_seeds)
    return df


def table2_run(run_dir, split: str = "test") -> pd.DataFrame:
    """One run's Table 2 row (ours, and where the paper has the model its row and, on the paper's data, the
    difference)."""
    run = RunDir(run_dir)
    model = run.params()["model"]
    return grouped(_comparison([_table2_block(model, [run_dir], split)], IOU_COLUMNS,
                               diff=compares_with_paper(run.profile())), IOU_GROUPS)


def selected_runs(profile, variant: str | None = None, split: str = "test", evaluated: bool = False) -> pd.DataFrame:
    """One row per model of the profile with a usable run (see :func:`select_run`): model, variant, run_dir."""
    p = _profile(profile)
    variant = variant or p.main_variant
    rows = []
    for model in p.models:
        try:
            rows.append({"model": model, "variant": variant,
                         "run_dir": select_run(p, model, variant, split=split, evaluated=evaluated)})
        except FileNotFoundError:
            continue
    return pd.DataFrame(rows, columns=["model", "variant", "run_dir"])


# --- Tables 1 and 5 --------------------------------------------------------------------------------------
def table1(profile, model: str | None = None, split: str = "test") -> pd.DataFrame:
    """Table 1: the plain U-Net trained on the base vs the refined data (both tested on the refined test split);
    with several seeds, the mean and *seed sd* over them as in :func:`table2`."""
    p = _profile(profile)
    model = model or (p.table1_models[0] if p.table1_models else "unet")
    t1 = tables()["table1_dataset_refinement"]
    blocks, n_seeds = [], {}
    for variant, label in (("base", "Base"), ("refined", "Refined")):
        run_dirs = select_runs(p, model, variant, split=split)
        ours, sd = _seeds_iou(run_dirs, split)
        blocks.append((label, ours, _paper_iou(t1[label]), sd))
        n_seeds[label] = len(run_dirs)
    df = grouped(_comparison(blocks, IOU_COLUMNS, names=("dataset", "source"), diff=compares_with_paper(p)),
                 IOU_GROUPS)
    df.attrs["n_seeds"] = n_seeds
    return df


def table5(run_dir, split: str = "test") -> pd.DataFrame:
    """Table 5: the model without / with ground-truth class injection (plus the hard and the 'no dress'
    variants, which the paper does not tabulate), beside the paper's two rows."""
    t5 = tables()["table5_gt_injection"]
    columns = ("IoU ex. bg", *SHORT_LABELS)
    variants = eval_metrics(run_dir, split)["variants"]
    blocks = []
    for variant, label, paper_key in TABLE5_ROWS:
        if variant not in variants:
            continue
        s = variants[variant]
        ours = {"IoU ex. bg": s["pooled_excl_bg"], **{lab: s["per_class"][n] for lab, n in zip(SHORT_LABELS, CLASSES)}}
        paper = None
        if paper_key is not None:
            e = t5[paper_key]
            paper = {"IoU ex. bg": e["iou_excl_bg"], **dict(zip(SHORT_LABELS, e["per_class"]))}
        blocks.append((label, ours, paper))
    return _comparison(blocks, columns, names=("setting", "source"),
                       diff=compares_with_paper(RunDir(run_dir).profile()))


# --- the numbers other parsers report --------------------------------------------------------------------
#: Per number: what it is, and who reports it (on their own data, so a value to place, not to compare with).
PEER_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("pooled_excl_bg", "IoU excl. bg, pooled", "Σ TP / Σ (TP + FP + FN) over the 8 clothing classes",
     "the paper ({paper} on iMaterialist)"),
    ("pixel_accuracy", "pixel accuracy", "share of pixels whose class is right, background included (trace / sum "
     "of the confusion matrix)", "CCP's paper (88.23 on CCP)"),
    ("mean_overall", "mean IoU with background", "mean of the per-class IoUs, background included",
     "SCHP, SegFormer parsers (LIP 59.4, ATR 82.3)"),
    ("mean_excl_bg", "mean IoU excl. bg", "mean of the per-class IoUs of the 8 clothing classes", "—"),
)
#: How the means treat a class absent from the test split's ground truth and from the predictions.
MEAN_CONVENTION = ("The means are over the classes present in the ground truth or the prediction: a class absent "
                   "from both has no IoU (0/0) and is left out, a class only predicted or only annotated counts 0.")


def peer_metrics(run_dir, split: str = "test") -> pd.DataFrame:
    """The run's numbers as other clothing parsers report them — pixel accuracy, mean IoU with and without
    background — beside the paper's pooled IoU, each with what it is and who reports it (:data:`PEER_METRICS`;
    the means' convention for absent classes: :data:`MEAN_CONVENTION`). Computed from the saved confusion
    matrix (no prior), so an evaluation written before these numbers were stored shows them too."""
    summary = iou_summary(np.load(RunDir(run_dir).evaluation(split).require().confusion_path("plain")))
    paper = table2_row("extended_unet")["iou_excl_bg"]
    rows = [{"metric": label, "ours (%)": summary[key], "what it is": what, "reported by": who.format(paper=paper)}
            for key, label, what, who in PEER_METRICS]
    return _no_nan(pd.DataFrame(rows).set_index("metric"))


# --- Table 4: ClassBranch --------------------------------------------------------------------------------
def has_classbranch(run_dir, split: str = "test") -> bool:
    """Whether the run's model has a ClassBranch (its evaluation scored one)."""
    return "classbranch" in eval_metrics(run_dir, split)


def _classbranch(run_dir, split) -> dict:
    m = eval_metrics(run_dir, split)
    if "classbranch" not in m:
        model = RunDir(run_dir).params().get("model", "?")
        raise ValueError(f"{run_dir}: model {model!r} has no ClassBranch, so there is no Table 4 for it")
    return m["classbranch"]


def table4(run_dir, split: str = "test", average: str | None = None) -> pd.DataFrame:
    """Table 4: ClassBranch F1, F2 (``average``: macro by default, see ``metrics.PAPER_F_AVERAGE``),
    % of images with an exactly right label set, per-class accuracy — ours, the paper's, the difference."""
    average = average or PAPER_F_AVERAGE
    cb = _classbranch(run_dir, split)
    t4 = tables()["table4_classbranch"]
    labels = SHORT_LABELS[1:]
    columns = ("F1", "F2", "% of images", *labels)
    ours = {"F1": cb["f1"][average], "F2": cb["f2"][average], "% of images": cb["exact_match"],
            **{lab: cb["per_class_accuracy"][n] for lab, n in zip(labels, CLOTHING)}}
    paper = {"F1": t4["f1"], "F2": t4["f2"], "% of images": t4["exact_match_images"],
             **{lab: t4["per_class_accuracy"][n] for lab, n in zip(labels, CLOTHING)}}
    return _comparison([("ClassBranch", ours, paper)], columns, names=("branch", "source"),
                       diff=compares_with_paper(RunDir(run_dir).profile())).droplevel(0)


def table4_averages(run_dir, split: str = "test") -> pd.DataFrame:
    """F1 and F2 of the ClassBranch under each averaging (samples, micro, macro), beside the paper's
    single number (the paper does not say which average it used)."""
    cb = _classbranch(run_dir, split)
    t4 = tables()["table4_classbranch"]
    rows = {f"F{b}": {**{a: cb[f"f{b}"][a] for a in ("samples", "micro", "macro")}, "paper": t4[f"f{b}"]}
            for b in (1, 2)}
    return pd.DataFrame(rows).T.rename_axis("score")
