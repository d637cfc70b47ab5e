"""The paper's tables and figures as functions of run folders and of the paper's numbers.

Every function returns a :class:`pandas.DataFrame` or a matplotlib ``Figure`` and prints nothing;
the notebooks call them and display the result. Comparison tables put *ours*, the *paper*'s number
and their difference on separate rows of one table (a row index ``(…, source)``); a row exists only
where there is a number to show, and a missing value is the string ``"—"``, never ``NaN``
(:data:`MISSING`). Values are not rounded here — :func:`rounded` does that for display.

A run folder (see :mod:`clothparse.train`, :mod:`clothparse.evaluate`) is
``<runs_dir>/<profile>/<model>-<hash>/`` with ``params.json``, ``provenance.json``, ``history.csv``,
``metrics.json``, ``COMPLETE`` and ``evaluation/<split>/`` (``metrics.json``,
``confusion_<variant>.npy``, ``per_image.csv``, ``predictions.npz``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import runs
from .categories import CLASSES, CLOTHING, NUM_CLASSES, PALETTE, SHORT_LABELS, colorize

__all__ = [
    "MISSING", "SOURCES", "IOU_COLUMNS", "rounded", "main_variant", "model_label", "find_runs", "select_run",
    "selected_runs", "run_store", "eval_metrics", "table2", "table2_run", "table1", "table3", "paper_table3",
    "table3_diagonal", "table3_top_confusions", "confusion", "figure_confusion", "figure_paper_confusion",
    "has_classbranch", "table4", "table4_averages", "table5", "figure_no_dress", "figure_loss_sorted",
    "loss_sorted_selection", "figure_history", "history_table", "run_overview", "consistency_table",
    "architecture_figure", "architecture_table", "trace_model", "data_overview", "split_table",
    "class_distribution", "merge_table", "refine_stages", "figure_examples", "provenance_table", "overlay",
]

#: How a missing number is shown (tables never hold NaN).
MISSING = "—"
#: Row labels of a comparison: ours, the paper's, ours − paper.
OURS, PAPER, DIFF = "ours", "paper", "ours − paper"
SOURCES: tuple[str, str, str] = (OURS, PAPER, DIFF)
#: Table 2 / Table 1 columns: the paper's pooled IoUs, the mask IoU, per-class IoU, then the usual mean IoU.
MIOU = "mIoU excl. bg (mean)"
IOU_COLUMNS: tuple[str, ...] = ("IoU excl. bg", "IoU overall", "IoU Mask", *SHORT_LABELS, MIOU)
#: Class labels as printed in the paper's Table 3.
TABLE3_LABELS: tuple[str, ...] = ("bg", "top", "overTop", "pants", "shorts", "skirt", "dress", "shoe", "bag")
#: Display names of the models: the paper's Table 2 row names, plus the extra smp U-Net.
EXTRA_MODELS: dict[str, str] = {"smp_unet": "smp U-Net (not in the paper)"}
DRESS = CLASSES.index("dress")
#: Injection variants of :mod:`clothparse.evaluate` → Table 5 row labels (paper rows where the paper has them).
TABLE5_ROWS: tuple[tuple[str, str, str | None], ...] = (
    ("plain", "Without GT", "Without GT"),
    ("gt", "With GT", "With GT"),
    ("gt_hard", "With GT, absent classes forbidden", None),
    ("no_dress", "'no dress' prior only (dress entry from GT)", None),
)


# --- small helpers ------------------------------------------------------------------------------------
def rounded(df: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """``df`` with every float cell rounded (also in object columns that mix numbers and ``"—"``)."""
    def r(v):
        return round(float(v), decimals) if isinstance(v, (float, np.floating)) else v

    return df.map(r)


def _no_nan(df: pd.DataFrame) -> pd.DataFrame:
    """NaN / None → :data:`MISSING` (object dtype only where something is missing)."""
    if not df.isna().to_numpy().any():
        return df
    return df.astype(object).where(df.notna(), MISSING)


def _profile(profile) -> dict:
    from .profiles import load_profile

    return profile if isinstance(profile, dict) else load_profile(profile)


def main_variant(profile) -> str:
    """The data variant a profile's models train on: ``refined`` where the profile refines, else ``base``."""
    p = _profile(profile)
    return "refined" if p["data"]["refine"] and p["data"]["kind"] != "ccp" else "base"


def model_label(model: str) -> str:
    """The paper's Table 2 name of a model (``"Our model (extended_unet)"``)."""
    from .paper import TABLE2_MODEL_NAMES

    inverse = {v: k for k, v in TABLE2_MODEL_NAMES.items()}
    if model in inverse:
        return f"{inverse[model]} ({model})"
    return EXTRA_MODELS.get(model, model)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return runs.read_json(path)


# --- finding runs ---------------------------------------------------------------------------------------
def find_runs(profile, split: str = "test") -> pd.DataFrame:
    """Every run folder of a profile: model, variant, run_id, run_dir, complete, evaluated (on ``split``),
    matches_profile (trained with the profile's current parameters), finished (time of COMPLETE)."""
    from .profiles import runs_dir
    from .train import training_params

    p = _profile(profile)
    root = runs_dir(p)
    rows = []
    for params_path in sorted(root.glob("*/params.json")) if root.is_dir() else []:
        run_dir = params_path.parent
        try:
            params = runs.read_json(params_path)
        except ValueError as err:
            raise ValueError(f"{params_path}: not valid JSON ({err})") from err
        model, variant = params.get("model"), params.get("variant")
        if model is None or variant is None:
            raise ValueError(f"{params_path}: no 'model'/'variant' entry — not a clothparse run folder")
        mine = {k: params.get(k) for k in ("model", "variant", "size", "train", "split", "encoder_weights")}
        matches = runs.stable_hash(mine) == runs.stable_hash(training_params(p, model, variant))
        complete = runs.is_complete(run_dir)
        finished = runs.read_json(run_dir / runs.COMPLETE).get("finished", "") if complete else ""
        evaluated = (run_dir / "evaluation" / split / runs.COMPLETE).is_file()
        rows.append({"model": model, "variant": variant, "run_id": run_dir.name, "run_dir": run_dir,
                     "complete": complete, "evaluated": evaluated, "matches_profile": matches, "finished": finished})
    cols = ["model", "variant", "run_id", "run_dir", "complete", "evaluated", "matches_profile", "finished"]
    df = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(p["models"])}
    df["_o"] = df["model"].map(lambda m: order.get(m, len(order)))
    return df.sort_values(["_o", "model", "variant", "finished"]).drop(columns="_o").reset_index(drop=True)


def select_run(profile, model: str, variant: str | None = None, split: str = "test",
               evaluated: bool = True) -> Path:
    """The run folder of ``model``/``variant`` trained with the profile's current parameters (the newest
    complete one; evaluated on ``split`` when ``evaluated``). ``FileNotFoundError`` says what is missing."""
    p = _profile(profile)
    variant = variant or main_variant(p)
    df = find_runs(p, split=split)
    mine = df[(df["model"] == model) & (df["variant"] == variant)]
    ok = mine[mine["complete"] & mine["matches_profile"]]
    if evaluated:
        ok = ok[ok["evaluated"]]
    if ok.empty:
        evaluated_on = f" evaluated on {split!r}" if evaluated else ""
        seen = ", ".join(f"{r.run_id} (complete={r.complete}, evaluated={r.evaluated}, "
                         f"current parameters={r.matches_profile})" for r in mine.itertuples()) or "none"
        raise FileNotFoundError(
            f"profile {p['name']!r}: no complete run of {model} ({variant}){evaluated_on} with the profile's current "
            f"parameters "
            f"in {find_runs_root(p)}; runs found: {seen}. Train with `clothparse train --profile {p['name']} "
            f"--model {model} --variant {variant}` and evaluate with `clothparse evaluate <run_dir>`.")
    return Path(ok.sort_values("finished")["run_dir"].iloc[-1])


def find_runs_root(profile) -> Path:
    from .profiles import runs_dir

    return runs_dir(_profile(profile))


def _eval_dir(run_dir: Path | str, split: str = "test") -> Path:
    ev = Path(run_dir) / "evaluation" / split
    if not (ev / runs.COMPLETE).is_file():
        raise FileNotFoundError(f"{Path(run_dir)} has no finished evaluation on {split!r} ({ev}); "
                                f"run clothparse.evaluate.evaluate(run_dir, split={split!r}) first")
    return ev


def eval_metrics(run_dir: Path | str, split: str = "test") -> dict:
    """``evaluation/<split>/metrics.json`` of a run."""
    return _read_json(_eval_dir(run_dir, split) / "metrics.json")


def _variant_summary(run_dir, split: str, variant: str) -> dict:
    m = eval_metrics(run_dir, split)
    if variant not in m.get("variants", {}):
        raise KeyError(f"{_eval_dir(run_dir, split) / 'metrics.json'}: no injection variant {variant!r} "
                       f"(has {sorted(m.get('variants', {}))})")
    return m["variants"][variant]


def run_store(run_dir: Path | str, split: str = "test"):
    """The store a run was evaluated on (``<work_dir>/<profile>/stores/<store_key>``), opened read-only."""
    from .profiles import load_profile, work_dir
    from .store import Store

    params = _read_json(Path(run_dir) / "params.json")
    key = eval_metrics(run_dir, split)["store_key"]
    path = work_dir(load_profile(params["profile_full"])) / "stores" / key
    if not path.is_dir():
        raise FileNotFoundError(f"{run_dir}: its evaluation store {path} is gone; run prepare() for the profile again")
    return Store(path)


def _check_store(store, run_dir, split: str) -> None:
    want = eval_metrics(run_dir, split)["store_key"]
    if store.meta.get("key") != want:
        raise ValueError(f"{run_dir} was evaluated on store {want[:12]}…, not on {store.meta.get('key', '?')[:12]}…")


# --- IoU comparisons (Tables 1, 2, 5) ------------------------------------------------------------------
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


def _comparison(blocks: Sequence[tuple[str, dict, dict | None]], columns: Sequence[str],
                names: tuple[str, str] = ("model", "source")) -> pd.DataFrame:
    """Rows ``(label, ours)``, and where the paper has numbers ``(label, paper)``, ``(label, ours − paper)``."""
    rows, index = [], []
    for label, ours, paper in blocks:
        o = {c: ours.get(c, np.nan) for c in columns}
        rows.append(o)
        index.append((label, OURS))
        if paper is not None:
            pp = {c: paper.get(c, np.nan) for c in columns}
            rows.append(pp)
            index.append((label, PAPER))
            rows.append({c: o[c] - pp[c] for c in columns})
            index.append((label, DIFF))
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=list(names)), columns=list(columns),
                      dtype=float)
    return _no_nan(df)


def _table2_block(model: str, run_dir, split: str) -> tuple[str, dict, dict | None]:
    from .paper import TABLE2_MODEL_NAMES, table2_row

    ours = _ours_iou(_variant_summary(run_dir, split, "plain"))
    paper = _paper_iou(table2_row(model)) if model in TABLE2_MODEL_NAMES.values() else None
    return model_label(model), ours, paper


def table2(profile, split: str = "test", models: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 2: every model of the profile (main variant), IoUs on ``split`` beside the paper's.

    Columns :data:`IOU_COLUMNS`; the pooled "IoU excl. bg"/"IoU overall" are the paper's metrics,
    "mIoU excl. bg (mean)" the usual mean of per-class IoUs (the paper's row: the mean of its
    per-class numbers). Models without an evaluated run are left out and listed in ``df.attrs["missing"]``.
    """
    from .paper import TABLE2_MODEL_NAMES

    p = _profile(profile)
    variant = main_variant(p)
    models = list(models) if models is not None else list(p["models"])
    ours_models = set(TABLE2_MODEL_NAMES.values())
    order = [m for m in TABLE2_MODEL_NAMES.values() if m in models] + [m for m in models if m not in ours_models]
    blocks, missing = [], []
    for model in order:
        try:
            run_dir = select_run(p, model, variant, split=split)
        except FileNotFoundError:
            missing.append(model)
            continue
        blocks.append(_table2_block(model, run_dir, split))
    if not blocks:
        raise FileNotFoundError(f"profile {p['name']!r}: no evaluated run of any of {models} in {find_runs_root(p)}")
    df = _comparison(blocks, IOU_COLUMNS)
    df.attrs["missing"] = missing
    return df


def table2_run(run_dir: Path | str, split: str = "test") -> pd.DataFrame:
    """One run's Table 2 row (ours, and the paper's row and the difference when the paper has the model)."""
    model = _read_json(Path(run_dir) / "params.json")["model"]
    return _comparison([_table2_block(model, run_dir, split)], IOU_COLUMNS)


def selected_runs(profile, variant: str | None = None, split: str = "test", evaluated: bool = False) -> pd.DataFrame:
    """One row per model of the profile with a usable run (see :func:`select_run`): model, variant, run_dir."""
    p = _profile(profile)
    variant = variant or main_variant(p)
    rows = []
    for model in p["models"]:
        try:
            rows.append({"model": model, "variant": variant,
                         "run_dir": select_run(p, model, variant, split=split, evaluated=evaluated)})
        except FileNotFoundError:
            continue
    return pd.DataFrame(rows, columns=["model", "variant", "run_dir"])


def table1(profile, model: str | None = None, split: str = "test") -> pd.DataFrame:
    """Table 1: the plain U-Net trained on the base vs the refined data (both tested on the refined test split)."""
    from .paper import tables

    p = _profile(profile)
    model = model or (p["table1_models"][0] if p["table1_models"] else "unet")
    t1 = tables()["table1_dataset_refinement"]
    blocks = []
    for variant, label in (("base", "Base"), ("refined", "Refined")):
        run_dir = select_run(p, model, variant, split=split)
        blocks.append((label, _ours_iou(_variant_summary(run_dir, split, "plain")), _paper_iou(t1[label])))
    return _comparison(blocks, IOU_COLUMNS, names=("dataset", "source"))


def table5(run_dir: Path | str, split: str = "test") -> pd.DataFrame:
    """Table 5: the model without / with ground-truth class injection (plus the hard and the 'no dress'
    variants, which the paper does not tabulate), beside the paper's two rows."""
    from .paper import tables

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
    return _comparison(blocks, columns, names=("setting", "source"))


# --- Table 3: confusion matrices ------------------------------------------------------------------------
def confusion(run_dir: Path | str, split: str = "test", variant: str = "plain") -> np.ndarray:
    """The 9×9 pixel confusion matrix (int64, rows = ground truth) of an evaluation."""
    path = _eval_dir(run_dir, split) / f"confusion_{variant}.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    cm = np.load(path, allow_pickle=False)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"{path}: expected a {NUM_CLASSES}×{NUM_CLASSES} matrix, got {cm.shape}")
    return cm


def _matrix_frame(m: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(m, index=pd.Index(TABLE3_LABELS, name="ground truth"),
                      columns=pd.Index(TABLE3_LABELS, name="predicted"))
    return _no_nan(df)


def _paper_matrices() -> tuple[np.ndarray, np.ndarray]:
    from .paper import tables

    t = tables()
    return (np.asarray(t["table3_confusion_row_percent"], float), np.asarray(t["table3_confusion_column_percent"], float))


def table3(run_dir: Path | str, split: str = "test", variant: str = "plain") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3: the row-% (where each class's GT pixels go) and column-% (what GT lies under each
    predicted class) confusion matrices, as two DataFrames (a class with no pixels shows "—")."""
    from .metrics import column_percent, row_percent

    cm = confusion(run_dir, split, variant)
    return _matrix_frame(row_percent(cm)), _matrix_frame(column_percent(cm))


def paper_table3() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table 3 (row % and column %), as DataFrames."""
    r, c = _paper_matrices()
    return _matrix_frame(r), _matrix_frame(c)


def table3_diagonal(run_dir: Path | str, split: str = "test", variant: str = "plain") -> pd.DataFrame:
    """The diagonals of Table 3 — per class, the share of GT pixels predicted right (row %, recall) and
    of predicted pixels that are right (column %, precision) — ours beside the paper's."""
    from .metrics import column_percent, row_percent

    cm = confusion(run_dir, split, variant)
    pr, pc = _paper_matrices()
    ours_r, ours_c = np.diag(row_percent(cm)), np.diag(column_percent(cm))
    df = pd.DataFrame({("row % (recall)", OURS): ours_r, ("row % (recall)", PAPER): np.diag(pr),
                       ("row % (recall)", DIFF): ours_r - np.diag(pr),
                       ("column % (precision)", OURS): ours_c, ("column % (precision)", PAPER): np.diag(pc),
                       ("column % (precision)", DIFF): ours_c - np.diag(pc)},
                      index=pd.Index(TABLE3_LABELS, name="class"))
    return _no_nan(df)


def table3_top_confusions(run_dir: Path | str, k: int = 8, split: str = "test", variant: str = "plain") -> pd.DataFrame:
    """The ``k`` largest off-diagonal row-% cells of our matrix (GT class → predicted class), with the
    paper's value of the same cell (the paper discusses dress vs skirt, top vs overtop, shorts vs skirt)."""
    from .metrics import row_percent

    ours = row_percent(confusion(run_dir, split, variant))
    paper = _paper_matrices()[0]
    cells = [(i, j) for i in range(NUM_CLASSES) for j in range(NUM_CLASSES) if i != j and np.isfinite(ours[i, j])]
    cells.sort(key=lambda ij: -ours[ij])
    rows = [{"ground truth": TABLE3_LABELS[i], "predicted as": TABLE3_LABELS[j], f"{OURS} (row %)": ours[i, j],
             f"{PAPER} (row %)": paper[i, j]} for i, j in cells[:k]]
    return pd.DataFrame(rows, columns=["ground truth", "predicted as", f"{OURS} (row %)", f"{PAPER} (row %)"])


def _heatmap(ax, m: np.ndarray, title: str) -> None:
    """An annotated percentage heatmap (plain matplotlib: seaborn's import alone costs seconds)."""
    shown = np.ma.masked_invalid(np.asarray(m, dtype=float))
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=100)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=6.5,
                        color="white" if m[i, j] > 60 else "black")
    ax.set_xticks(range(len(TABLE3_LABELS)), TABLE3_LABELS, rotation=90, fontsize=8)
    ax.set_yticks(range(len(TABLE3_LABELS)), TABLE3_LABELS, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")


def figure_confusion(run_dir: Path | str, split: str = "test", variant: str = "plain", paper: bool = True):
    """Table 3 as annotated heatmaps: our row % and column % (and the paper's below them when ``paper``).
    Cells of a class with no pixels stay blank."""
    import matplotlib.pyplot as plt

    from .metrics import column_percent, row_percent

    cm = confusion(run_dir, split, variant)
    n_rows = 2 if paper else 1
    fig, axes = plt.subplots(n_rows, 2, figsize=(11, 5.2 * n_rows), squeeze=False, layout="constrained")
    name = _read_json(Path(run_dir) / "params.json").get("model", Path(run_dir).name)
    _heatmap(axes[0, 0], row_percent(cm), f"ours ({name}): row % — where GT pixels go")
    _heatmap(axes[0, 1], column_percent(cm), f"ours ({name}): column % — GT under predicted pixels")
    if paper:
        pr, pc = _paper_matrices()
        _heatmap(axes[1, 0], pr, "paper, Table 3: row %")
        _heatmap(axes[1, 1], pc, "paper, Table 3: column %")
    return fig


def figure_paper_confusion():
    """The paper's Table 3 as two annotated heatmaps (row %, column %)."""
    import matplotlib.pyplot as plt

    pr, pc = _paper_matrices()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
    _heatmap(axes[0], pr, "paper, Table 3: row %")
    _heatmap(axes[1], pc, "paper, Table 3: column %")
    return fig


# --- Table 4: ClassBranch --------------------------------------------------------------------------------
def has_classbranch(run_dir: Path | str, split: str = "test") -> bool:
    """Whether the run's model has a ClassBranch (its evaluation scored one)."""
    return "classbranch" in eval_metrics(run_dir, split)


def _classbranch(run_dir, split) -> dict:
    m = eval_metrics(run_dir, split)
    if "classbranch" not in m:
        model = _read_json(Path(run_dir) / "params.json").get("model", "?")
        raise ValueError(f"{run_dir}: model {model!r} has no ClassBranch, so there is no Table 4 for it")
    return m["classbranch"]


def table4(run_dir: Path | str, split: str = "test", average: str | None = None) -> pd.DataFrame:
    """Table 4: ClassBranch F1, F2 (``average``: macro by default, see ``metrics.PAPER_F_AVERAGE``),
    % of images with an exactly right label set, per-class accuracy — ours, the paper's, the difference."""
    from .metrics import PAPER_F_AVERAGE
    from .paper import tables

    average = average or PAPER_F_AVERAGE
    cb = _classbranch(run_dir, split)
    t4 = tables()["table4_classbranch"]
    labels = SHORT_LABELS[1:]
    columns = ("F1", "F2", "% of images", *labels)
    ours = {"F1": cb["f1"][average], "F2": cb["f2"][average], "% of images": cb["exact_match"],
            **{lab: cb["per_class_accuracy"][n] for lab, n in zip(labels, CLOTHING)}}
    paper = {"F1": t4["f1"], "F2": t4["f2"], "% of images": t4["exact_match_images"],
             **{lab: t4["per_class_accuracy"][n] for lab, n in zip(labels, CLOTHING)}}
    return _comparison([("ClassBranch", ours, paper)], columns, names=("branch", "source")).droplevel(0)


def table4_averages(run_dir: Path | str, split: str = "test") -> pd.DataFrame:
    """F1 and F2 of the ClassBranch under each averaging (samples, micro, macro), beside the paper's
    single number (the paper does not say which average it used)."""
    from .paper import tables

    cb = _classbranch(run_dir, split)
    t4 = tables()["table4_classbranch"]
    rows = {f"F{b}": {**{a: cb[f"f{b}"][a] for a in ("samples", "micro", "macro")}, "paper": t4[f"f{b}"]}
            for b in (1, 2)}
    return pd.DataFrame(rows).T.rename_axis("score")


# --- figures of predictions --------------------------------------------------------------------------------
def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``image`` with the clothing pixels of ``mask`` tinted in their class colours (background untouched)."""
    out = np.asarray(image, dtype=np.float32).copy()
    fg = np.asarray(mask) > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colorize(mask)[fg].astype(np.float32)
    return out.round().astype(np.uint8)


def _legend(fig, classes: Iterable[int] = range(NUM_CLASSES)) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=np.asarray(PALETTE[c]) / 255, edgecolor="0.4", label=CLASSES[c]) for c in classes]
    ncol = len(handles) if fig.get_figwidth() >= 7.5 else -(-len(handles) // 2)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


def _predictions(run_dir, split: str) -> dict[str, np.ndarray]:
    path = _eval_dir(run_dir, split) / "predictions.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if "rows" not in out or "plain" not in out:
        raise ValueError(f"{path}: expected arrays 'rows' and 'plain', got {sorted(out)}")
    return out


def _cell_size(shape: tuple[int, int], height: float = 2.3) -> tuple[float, float]:
    h, w = shape
    return height * w / h, height


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def figure_no_dress(run_dir: Path | str, store=None, n: int = 3, split: str = "test", min_fraction: float = 0.005):
    """Figure 5: images whose ground truth has no dress, most dress pixels in the plain prediction first;
    rows: image, prediction without prior, prediction with the 'no dress' prior, ground truth.
    The title counts the sample's dress-free images with a dress predicted on ``min_fraction`` of the image."""
    import matplotlib.pyplot as plt

    store = store if store is not None else run_store(run_dir, split)
    _check_store(store, run_dir, split)
    preds = _predictions(run_dir, split)
    if "no_dress" not in preds:
        raise KeyError(f"{run_dir}: predictions.npz has no 'no_dress' variant (re-run evaluate)")
    rows = preds["rows"]
    gt = np.asarray(store.masks[np.sort(rows)])[np.argsort(np.argsort(rows))]
    no_dress_gt = ~(gt == DRESS).any(axis=(1, 2))
    dress_px = (preds["plain"] == DRESS).sum(axis=(1, 2))
    candidates = np.flatnonzero(no_dress_gt)
    if len(candidates) == 0:
        raise ValueError(f"{run_dir}: every image of the qualitative sample has a dress in its ground truth")
    chosen = candidates[np.argsort(-dress_px[candidates], kind="stable")][:n]
    n_wrong = int((dress_px[candidates] >= max(1, min_fraction * gt.shape[1] * gt.shape[2])).sum())
    cw, ch = _cell_size(gt.shape[1:])
    fig, axes = plt.subplots(4, len(chosen), figsize=(max(cw * len(chosen) + 1.2, 6.0), ch * 4 + 1.4),
                             squeeze=False, layout="constrained")
    labels = ("input", "no prior", "'no dress' prior", "ground truth")
    for col, k in enumerate(chosen):
        image = np.asarray(store.images[int(rows[k])])
        after = int((preds["no_dress"][k] == DRESS).sum())
        panels = (image, colorize(preds["plain"][k]), colorize(preds["no_dress"][k]), colorize(gt[k]))
        for r, panel in enumerate(panels):
            ax = axes[r, col]
            ax.imshow(panel, interpolation="nearest")
            _clean(ax)
            if col == 0:
                ax.set_ylabel(labels[r], fontsize=9)
        axes[0, col].set_title(f"{store.image_ids[int(rows[k])]}\ndress px {int(dress_px[k])} → {after}", fontsize=8)
    fig.suptitle(f"'no dress' prior on images without a dress\n({n_wrong} of {len(candidates)} such images of the "
                 f"sample have a dress predicted)", fontsize=10)
    _legend(fig)
    return fig


def _composite(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, gap: int = 2) -> np.ndarray:
    """image | prediction | ground truth, side by side with white gaps."""
    white = np.full((image.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([image, white, colorize(pred), white, colorize(gt)], axis=1)


def _present(mask: np.ndarray, min_pixels: int = 1) -> set[int]:
    counts = np.bincount(np.asarray(mask).ravel(), minlength=NUM_CLASSES)
    return {c for c in range(1, NUM_CLASSES) if counts[c] >= min_pixels}


def loss_sorted_selection(run_dir: Path | str, store=None, n_per_row: int = 4, split: str = "test",
                          min_fraction: float = 0.005) -> pd.DataFrame:
    """The images of Figure 6: per row (highest / middle / lowest loss / failure cases), the store row,
    image id, loss and — for failure cases — the classes predicted but absent (+) or present but missed (−).

    A class counts as predicted when it covers at least ``min_fraction`` of the image (specks do not count);
    failure cases are the highest-loss images not shown in the other rows whose predicted class set differs
    from the ground truth's. Rows hold ``n_per_row`` images, fewer when the sample has under ``3·n_per_row``.
    """
    store = store if store is not None else run_store(run_dir, split)
    _check_store(store, run_dir, split)
    preds = _predictions(run_dir, split)
    per = pd.read_csv(_eval_dir(run_dir, split) / "per_image.csv")
    if not {"row", "loss"} <= set(per.columns):
        raise ValueError(f"{_eval_dir(run_dir, split) / 'per_image.csv'}: needs columns row, loss")
    pos = {int(r): i for i, r in enumerate(preds["rows"])}
    sample = per[per["row"].isin(list(pos))].sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
    if sample.empty:
        raise ValueError(f"{run_dir}: no image of per_image.csv is in the qualitative sample")
    # rows of k images each, disjoint while the sample allows (the paper sorted 1,000 images)
    n = len(sample)
    k = max(1, min(n_per_row, n // 3)) if n >= 3 else n
    mid = min(max(k, (n - k) // 2), max(0, n - 2 * k)) if n >= 3 * k else max(0, (n - k) // 2)
    picks = [("highest loss", sample.iloc[:k]), ("middle loss", sample.iloc[mid:mid + k]),
             ("lowest loss", sample.iloc[n - k:].iloc[::-1])]
    h, w = preds["plain"].shape[1:]
    min_pixels = max(1, int(round(min_fraction * h * w)))
    shown = {int(r) for _, part in picks for r in part["row"]}
    fails = []
    for r in sample.itertuples():
        if r.row in shown:
            continue
        pred_set = _present(preds["plain"][pos[int(r.row)]], min_pixels)
        gt_set = _present(store.masks[int(r.row)])
        if pred_set != gt_set:
            fails.append((r.Index, " ".join([f"+{CLASSES[c]}" for c in sorted(pred_set - gt_set)]
                                            + [f"−{CLASSES[c]}" for c in sorted(gt_set - pred_set)])))
        if len(fails) == k:
            break
    out = []
    for label, part in picks:
        for r in part.itertuples():
            out.append({"group": label, "row": int(r.row), "image_id": store.image_ids[int(r.row)],
                        "loss": float(r.loss), "mismatch": ""})
    for i, mismatch in fails:
        r = sample.loc[i]
        out.append({"group": "failure cases", "row": int(r["row"]), "image_id": store.image_ids[int(r["row"])],
                    "loss": float(r["loss"]), "mismatch": mismatch})
    return pd.DataFrame(out, columns=["group", "row", "image_id", "loss", "mismatch"])


def figure_loss_sorted(run_dir: Path | str, store=None, n_per_row: int = 4, split: str = "test",
                       min_fraction: float = 0.005):
    """Figure 6: the qualitative sample sorted by per-image loss — highest, middle and lowest loss rows
    and a row of failure cases (see :func:`loss_sorted_selection`); each cell is image | prediction | GT."""
    import matplotlib.pyplot as plt

    store = store if store is not None else run_store(run_dir, split)
    sel = loss_sorted_selection(run_dir, store, n_per_row, split, min_fraction)
    preds = _predictions(run_dir, split)
    pos = {int(r): i for i, r in enumerate(preds["rows"])}
    groups = ["highest loss", "middle loss", "lowest loss", "failure cases"]
    k = int(sel.groupby("group").size().max())
    h, w = preds["plain"].shape[1:]
    cw, ch = _cell_size((h, 3 * w + 4), height=2.0)
    fig, axes = plt.subplots(len(groups), k, figsize=(cw * k + 1.0, ch * len(groups) + 1.2), squeeze=False,
                             layout="constrained")
    for r, group in enumerate(groups):
        part = sel[sel["group"] == group]
        for c in range(k):
            ax = axes[r, c]
            _clean(ax)
            if c == 0:
                ax.set_ylabel(group, fontsize=9)
            if c >= len(part):
                if c == 0:
                    ax.text(0.5, 0.5, "none in the sample", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            item = part.iloc[c]
            row = int(item["row"])
            ax.imshow(_composite(np.asarray(store.images[row]), preds["plain"][pos[row]], np.asarray(store.masks[row])),
                      interpolation="nearest")
            title = f"loss {item['loss']:.3f}" + (f"\n{item['mismatch']}" if item["mismatch"] else "")
            ax.set_title(title, fontsize=8)
    fig.suptitle(f"{len(preds['rows'])} test images sorted by loss; each cell: image | prediction | ground truth",
                 fontsize=10)
    _legend(fig)
    return fig


# --- training curves -------------------------------------------------------------------------------------------
def _history(run_dir: Path | str) -> pd.DataFrame:
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (the run has not finished an epoch)")
    h = pd.read_csv(path)
    for col in ("phase", "global_epoch"):
        if col not in h.columns:
            raise ValueError(f"{path}: no column {col!r}")
    h["x"] = h["global_epoch"] + 1
    return h


def _phase_boundary(ax, h: pd.DataFrame) -> None:
    if h["phase"].nunique() > 1:
        x = h.loc[h["phase"] == h["phase"].iloc[0], "x"].max() + 0.5
        ax.axvline(x, color="0.5", ls=":", lw=1)
        ax.text(x, 1.0, " unfreeze", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="0.4")


def _run_label(run_dir) -> str:
    params = _read_json(Path(run_dir) / "params.json")
    return f"{params.get('model', '?')} ({params.get('variant', '?')})"


def figure_history(run_dirs: Path | str | Sequence[Path | str] | pd.DataFrame):
    """Training curves. One run: total loss (train/valid), each loss term, valid pooled IoU excl. bg per
    epoch. Several runs (a list, or :func:`find_runs`'s frame): valid loss and valid IoU of each.
    A dotted line marks the end of the frozen phase."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if isinstance(run_dirs, pd.DataFrame):
        run_dirs = list(run_dirs["run_dir"])
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    run_dirs = list(run_dirs)
    if not run_dirs:
        raise ValueError("no run folder given")
    if len(run_dirs) == 1:
        h = _history(run_dirs[0])
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
        for col, style in (("train_loss", "-"), ("valid_loss", "--")):
            if col in h:
                axes[0].plot(h["x"], h[col], style, marker="o", ms=3, label=col.replace("_", " "))
        axes[0].set_title("compound loss")
        from .losses import CompoundLoss

        # Weighted as in training: the paper chose the weights so that the terms contribute about evenly.
        loss = CompoundLoss()
        weights = {"seg": loss.seg_weight, "cls": loss.class_weight, "box": loss.box_weight}
        for i, (term, wt) in enumerate(weights.items()):
            for part, style in (("train", "-"), ("valid", "--")):
                col = f"{part}_{term}"
                if col in h and h[col].notna().any():
                    axes[1].plot(h["x"], wt * h[col], style, color=f"C{i}", marker="o", ms=3,
                                 label=f"{part} {term} ×{wt:g}")
        axes[1].set_title("loss terms × their weights")
        if "iou_excl_bg" in h:
            axes[2].plot(h["x"], 100 * h["iou_excl_bg"], marker="o", ms=3, color="C3")
        axes[2].set_title("valid IoU excl. bg (pooled, %)")
        for ax in axes:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _phase_boundary(ax, h)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.suptitle(_run_label(run_dirs[0]), fontsize=10)
        return fig
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    for i, rd in enumerate(run_dirs):
        h = _history(rd)
        label = _run_label(rd)
        if "valid_loss" in h:
            axes[0].plot(h["x"], h["valid_loss"], marker="o", ms=3, color=f"C{i % 10}", label=label)
        if "iou_excl_bg" in h:
            axes[1].plot(h["x"], 100 * h["iou_excl_bg"], marker="o", ms=3, color=f"C{i % 10}", label=label)
        if i == 0:
            for ax in axes:
                _phase_boundary(ax, h)
    axes[0].set_title("valid compound loss")
    axes[1].set_title("valid IoU excl. bg (pooled, %)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(fontsize=7, loc="lower right")
    return fig


def history_table(run_dir: Path | str) -> pd.DataFrame:
    """``history.csv`` of a run (one row per epoch; the pooled IoU in %), without NaN."""
    h = _history(run_dir).drop(columns="x")
    if "iou_excl_bg" in h:
        h["iou_excl_bg"] = 100 * h["iou_excl_bg"]
        h = h.rename(columns={"iou_excl_bg": "valid IoU excl. bg (pooled, %)"})
    return _no_nan(h.set_index("global_epoch"))


def run_overview(run_dir: Path | str) -> pd.DataFrame:
    """A run at a glance: model, data variant, size, schedule, device, epochs, time, final valid IoUs."""
    run_dir = Path(run_dir)
    params = _read_json(run_dir / "params.json")
    prov = runs.read_json(run_dir / "provenance.json") if (run_dir / "provenance.json").is_file() else {}
    metrics = runs.read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    train = params.get("train", {})
    hist = run_dir / "history.csv"
    seconds = float(pd.read_csv(hist)["seconds"].sum()) if hist.is_file() else None
    valid = metrics.get("valid", {})
    rows = [("run folder", str(run_dir)), ("model", params.get("model")), ("data variant", params.get("variant")),
            ("input size (H×W)", "×".join(map(str, params.get("size", [])))),
            ("schedule", f"batch {train.get('batch_size')}, {train.get('epochs_frozen')} frozen + "
                         f"{train.get('epochs_unfrozen')} unfrozen epochs, lr_max {train.get('lr_max')}, "
                         f"wd {train.get('wd')}"),
            ("encoder weights", params.get("encoder_weights") or "random"), ("mixed precision", params.get("fp16")),
            ("device", prov.get("device_description") or params.get("device")), ("seed", prov.get("seed")),
            ("commit", prov.get("git_commit")), ("epochs", metrics.get("epochs")),
            ("train time (s)", None if seconds is None else round(seconds, 1)),
            ("valid IoU excl. bg (pooled)", valid.get("pooled_excl_bg")),
            ("valid IoU overall (pooled)", valid.get("pooled_overall")), ("valid IoU Mask", valid.get("mask")),
            ("valid mIoU excl. bg (mean)", valid.get("mean_excl_bg"))]
    df = pd.DataFrame(rows, columns=["item", "value"]).set_index("item")
    return _no_nan(df)


# --- the paper's own consistency -----------------------------------------------------------------------------------
def consistency_table() -> pd.DataFrame:
    """Table 2's IoUs of "Our model" beside the same IoUs recomputed from the paper's Table 3: shows the
    paper's "IoU excl. bg"/"IoU overall" are pooled IoUs (see ``metrics.paper_consistency_table``)."""
    from .metrics import paper_consistency_table

    return _no_nan(paper_consistency_table())


# --- architecture (Figure 1) ---------------------------------------------------------------------------------------
def _flat_tensors(obj) -> list:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _flat_tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _flat_tensors(o)]
    return []


def _type_label(module) -> str:
    from torch import nn

    kids = list(module.children())
    if isinstance(module, nn.Sequential) and kids and len({type(k) for k in kids}) == 1 and \
            type(module) is nn.Sequential:
        return f"{len(kids)}× {type(kids[0]).__name__}"
    return type(module).__name__


def trace_model(model, input_size: tuple[int, int] = (288, 192)) -> tuple[list[dict], list[tuple[int, int]]]:
    """Forward a zero image once through ``model`` and record its parts in call order — the encoder's
    children, and the other modules at the level where the encoder sits (containers opened) — with their
    output shape, parameter count and role (encoder / decoder / branch), and the data-flow edges
    ``(producer, consumer)`` between them (found by tensor identity; index -1 is the input image)."""
    import torch
    from torch import nn

    encoder = getattr(model, "encoder", None)
    targets: list[tuple[str, nn.Module, str]] = []

    def contains(module, inner) -> bool:
        return inner is not None and any(m is inner for m in module.modules())

    def visit(module, prefix: str) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if child is encoder:
                targets.extend((f"{full}.{n}", c, "encoder") for n, c in child.named_children())
            elif isinstance(child, (nn.ModuleList, nn.ModuleDict)) or contains(child, encoder):
                visit(child, full + ".")
            else:
                targets.append((full, child, "branch" if "branch" in name.lower() else "decoder"))

    visit(model, "")
    records: list[dict] = []
    keep: list = []   # every traced tensor stays alive, so no id() is reused during the pass

    def make_hook(name, kind):
        def hook(module, inputs, output):
            outs = _flat_tensors(output)
            ins = _flat_tensors(inputs)
            keep.extend(outs + ins)
            shape = tuple(outs[0].shape[1:]) if outs else ()
            records.append({"name": name, "type": _type_label(module), "kind": kind, "shape": shape,
                            "params": sum(p.numel() for p in module.parameters()),
                            "in": [id(t) for t in ins], "out": [id(t) for t in outs]})
        return hook

    hooks = [m.register_forward_hook(make_hook(n, k)) for n, m, k in targets]
    was_training = model.training
    try:
        model.eval()
        x = torch.zeros(1, 3, *input_size)
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    # a module called twice keeps its first call
    seen, recs = set(), []
    for r in records:
        if r["name"] not in seen:
            seen.add(r["name"])
            recs.append(r)
    edges = []
    for j, r in enumerate(recs):
        producers = set()
        for tid in r["in"]:
            if tid == id(x):
                producers.add(-1)
                continue
            for i in range(j - 1, -1, -1):
                if tid in recs[i]["out"]:
                    producers.add(i)
                    break
        edges.extend((i, j) for i in sorted(producers))
    return recs, edges


def _as_model(model, input_size):
    """A model built by name (random weights), or the given module."""
    if isinstance(model, str):
        from .models import build_model

        return build_model(model, input_size=input_size, encoder_weights=None)
    return model


def architecture_table(model_name=None, input_size: tuple[int, int] = (288, 192)) -> pd.DataFrame:
    """No model name: ``clothparse.models.model_summary`` of every model (parameters in millions, GFLOP per
    image). A model (name or module): its traced parts in call order (module, type, role, output shape,
    parameters)."""
    input_size = tuple(int(v) for v in input_size)
    if model_name is None:
        from .models import model_summary

        names = {"params_m": "parameters (M)", "gflop_forward": "GFLOP forward",
                 "gflop_forward_backward": "GFLOP forward+backward", "gflop_inference": "GFLOP inference"}
        return _no_nan(model_summary(input_size=input_size).rename(columns=names))
    recs, _ = trace_model(_as_model(model_name, input_size), input_size)
    return pd.DataFrame([{"module": r["name"], "type": r["type"], "role": r["kind"],
                          "output (C×H×W)": "×".join(map(str, r["shape"])), "parameters": r["params"]}
                         for r in recs])


def architecture_figure(model_name="extended_unet", input_size: tuple[int, int] = (288, 192)):
    """Figure 1, drawn from the model itself (:func:`trace_model`): one box per part in call order, at the
    depth of its output resolution, so the encoder descends and the decoder climbs back (the U); branches
    (outputs without a spatial size) hang below. Arrows are the traced data flow: solid along the trunk,
    dashed blue for skip connections, orange for branch outputs injected back into the segmentation.
    ``model_name``: a :func:`clothparse.models.build_model` name (built with random weights) or a module."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    input_size = tuple(int(v) for v in input_size)
    model = _as_model(model_name, input_size)
    if not isinstance(model_name, str):
        model_name = type(model).__name__
    recs, edges = trace_model(model, input_size)
    if not recs:
        raise ValueError(f"{model_name}: no part of the model was called in the forward pass")
    h0 = input_size[0]

    def level(r):
        s = r["shape"]
        return float(np.log2(h0 / s[1])) if len(s) == 3 and s[1] > 0 else None

    levels = [level(r) for r in recs]
    deepest = max([lv for lv in levels if lv is not None] or [0.0])
    branch_y = -(deepest + 1.5)
    pos = {-1: (-1.0, 0.0)}
    for i, (r, lv) in enumerate(zip(recs, levels)):
        pos[i] = (float(i), branch_y if lv is None else -lv)
    # Where branch outputs re-enter: the model's documented injection (clothparse.models.ExtendedUnet).
    injection = getattr(model, "injection", None)
    names = [r["name"] for r in recs]
    merge_to = None
    if injection == "concat" and "tail" in names:
        merge_to = names.index("tail")
    elif injection == "multiply" and "head" in names:
        merge_to = names.index("head")
    branch_ids = [i for i, r in enumerate(recs) if r["kind"] == "branch"]
    trunk = [i for i, r in enumerate(recs) if r["kind"] != "branch"]
    fed = {j for _, j in edges}
    extra = []
    # a trunk part fed by a new tensor (e.g. a concatenation) continues from the trunk part before it
    for a, b in zip(trunk[:-1], trunk[1:]):
        if b not in fed:
            extra.append((a, b))
    if merge_to is not None:
        extra += [(i, merge_to) for i in branch_ids if recs[i]["name"] == "class_branch" or injection == "concat"]
    from .models import FastaiUnet

    if isinstance(model, FastaiUnet) and "tail" in names:
        extra.append((-1, names.index("tail")))  # DynamicUnet's last cross: the input image joins the tail
    fig_w = max(8.0, 0.82 * (len(recs) + 1) + 0.8)
    fig, ax = plt.subplots(figsize=(fig_w, 1.05 * (deepest + 2.6) + 1.0), layout="constrained")
    colors = {"input": "#eeeeee", "encoder": "#cfe3f6", "decoder": "#d9f0d3", "branch": "#fde0c5"}
    bw, bh = 0.9, 0.74

    def box(i, label, kind):
        x, y = pos[i]
        ax.add_patch(FancyBboxPatch((x - bw / 2, y - bh / 2), bw, bh, boxstyle="round,pad=0.02",
                                    fc=colors[kind], ec="0.3", lw=0.7))
        ax.text(x, y, label, ha="center", va="center", fontsize=5.9)

    box(-1, f"input\n3×{input_size[0]}×{input_size[1]}", "input")
    for i, r in enumerate(recs):
        shape = "×".join(map(str, r["shape"])) or "—"
        short = re.sub(r"^(net\.)?encoder\.", "enc.", r["name"])
        box(i, f"{short}\n{r['type']}\n{shape}", r["kind"])

    def arrow(i, j, style):
        (xa, ya), (xb, yb) = pos[i], pos[j]
        kw = {"arrowstyle": "-|>", "mutation_scale": 7, "lw": 0.8, "shrinkA": 0, "shrinkB": 0}
        if style == "skip":
            ax.add_patch(FancyArrowPatch((xa, ya + bh / 2), (xb, yb + bh / 2), color="C0", ls="--",
                                         connectionstyle="arc3,rad=-0.18", **kw))
        elif style == "branch":
            ax.add_patch(FancyArrowPatch((xa, ya + bh / 2), (xb, yb - bh / 2), color="C1",
                                         connectionstyle="arc3,rad=0.0", **kw))
        else:
            start = (xa + bw / 2, ya) if xb > xa else (xa, ya - bh / 2)
            end = (xb - bw / 2, yb) if xb > xa else (xb, yb + bh / 2)
            ax.add_patch(FancyArrowPatch(start, end, color="0.35", connectionstyle="arc3,rad=0.0", **kw))

    for i, j in edges + extra:
        src_kind = "input" if i < 0 else recs[i]["kind"]
        if src_kind == "branch":
            arrow(i, j, "branch")
        elif recs[j]["kind"] == "branch" or j == i + 1 or i < 0 and j == 0:
            arrow(i, j, "flow")
        elif src_kind == "encoder" and recs[j]["kind"] == "decoder" and levels[i] is not None \
                and levels[i] < deepest:
            arrow(i, j, "skip")
        elif i < 0:
            (xa, ya), (xb, yb) = pos[i], pos[j]
            ax.add_patch(FancyArrowPatch((xa, ya + bh / 2), (xb, yb + bh / 2), color="0.5", ls=":", lw=0.8,
                                         arrowstyle="-|>", mutation_scale=7, connectionstyle="arc3,rad=-0.04"))
        else:
            arrow(i, j, "flow")
    ax.set_xlim(-1.6, len(recs) - 0.4)
    ax.set_ylim((branch_y if branch_ids else -deepest) - 0.7, 1.3)
    ticks = list(range(int(deepest) + 1))
    ax.set_yticks([-t for t in ticks], [f"1/{2 ** t}" for t in ticks], fontsize=7)
    ax.set_ylabel("resolution (of the input)")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    from matplotlib.lines import Line2D

    kinds = {r["kind"] for r in recs}
    handles = [Patch(fc=c, ec="0.3", label=k) for k, c in colors.items() if k in kinds]
    handles += [Line2D([], [], color="C0", ls="--", lw=0.8, label="skip connection"),
                Line2D([], [], color="0.5", ls=":", lw=0.8, label="input image fed again")]
    if merge_to is not None:
        handles.append(Line2D([], [], color="C1", lw=0.8, label=f"branch logits injected ({injection})"))
    ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=False)
    ax.set_title(f"{model_name}: its parts in call order, with output shapes (C×H×W) from one forward pass at "
                 f"{input_size[0]}×{input_size[1]}\nheight = resolution; arrows = traced data flow", fontsize=9)
    return fig


# --- data ---------------------------------------------------------------------------------------------------------
def data_overview(prepared) -> pd.DataFrame:
    """Facts of a prepared dataset: source, variant, store, image counts, what was skipped and why."""
    store = prepared.store
    meta = store.meta
    counts = prepared.splits.value_counts()
    skipped = meta.get("skipped_counts", {})
    rows = [("variant", prepared.variant), ("source folder", str(prepared.source_root)),
            ("data folder (after refinement)", str(prepared.data_root)),
            ("images in the store", len(store)), ("store size (H×W)", "×".join(map(str, store.size))),
            ("store key", str(meta.get("key", ""))[:16]),
            ("skipped by the reader", skipped.get("reader", 0)), ("skipped by the store build", skipped.get("store", 0)),
            ("images where a class vanished in the resize", meta.get("classes_lost_in_resize", 0))]
    rows += [(f"{s} images", int(counts.get(s, 0))) for s in ("train", "valid", "test")]
    rows += [("note", n) for n in prepared.notes]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item").astype(str)


def split_table(prepared) -> pd.DataFrame:
    """Split sizes, ours beside the paper's 30,429 / 3,913 / 9,128."""
    from .paper import tables

    paper = tables()["dataset"]["split"]
    counts = prepared.splits.value_counts()
    n, pn = len(prepared.splits), sum(paper.values())
    rows = [{"split": s, "ours": int(counts.get(s, 0)), "ours %": 100 * counts.get(s, 0) / max(n, 1),
             "paper": int(paper[s]), "paper %": 100 * paper[s] / pn} for s in ("train", "valid", "test")]
    return pd.DataFrame(rows).set_index("split")


def class_distribution(prepared) -> pd.DataFrame:
    """Per split, % of images containing each clothing class (and none), and the image count."""
    from .split import split_distribution

    df = split_distribution(list(prepared.store.classes), prepared.splits.to_numpy())
    cols = [c for c in df.columns if c != "count"]
    df[cols] = 100 * df[cols]
    return _no_nan(df)


def merge_table(prepared) -> pd.DataFrame:
    """How the source's categories map to the 9 classes: the iMaterialist table (from the dataset's
    ``label_descriptions.json``) or, for CCP, the label groups of ``categories.CCP_MERGE``."""
    from .categories import CCP_EXCLUDED, CCP_MERGE, CCP_SUIT_POLICY, imaterialist_category_map

    ld = Path(prepared.source_root) / "label_descriptions.json"
    if ld.is_file():
        return imaterialist_category_map(ld).merge_table().set_index("id")
    rows = [{"merged class": cls, "source labels": ", ".join(names)} for cls, names in CCP_MERGE.items()]
    rows.append({"merged class": "(image excluded)", "source labels": ", ".join(CCP_EXCLUDED)
                 + (", suit" if CCP_SUIT_POLICY == "exclude" else "")})
    rows.append({"merged class": "background", "source labels": "every other label"})
    return pd.DataFrame(rows).set_index("merged class")


def refine_stages(prepared) -> pd.DataFrame:
    """The refinement's stage counts beside the paper's (``refine.stage_table``), without NaN."""
    from .refine import stage_table

    if prepared.refine_report is None:
        raise ValueError("this prepared dataset was not refined (profile data.refine is off, or a CCP profile)")
    return _no_nan(stage_table(Path(prepared.data_root)))


def figure_examples(store, n: int = 8, indices: Sequence[int] | None = None, seed: int = 0, ncols: int = 4):
    """``n`` images of a store (random with ``seed``, or ``indices``) with their masks overlaid."""
    import matplotlib.pyplot as plt

    if indices is None:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(len(store), size=min(n, len(store)), replace=False))
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("no image to show")
    ncols = min(ncols, len(indices))
    nrows = -(-len(indices) // ncols)
    cw, ch = _cell_size(store.size)
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(2 * cw * ncols, ch * nrows + 0.8), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        _clean(ax)
    for k, i in enumerate(indices):
        image, mask = np.asarray(store.images[i]), np.asarray(store.masks[i])
        r, c = divmod(k, ncols)
        axes[r, 2 * c].imshow(image)
        axes[r, 2 * c].set_title(str(store.image_ids[i])[:24], fontsize=7)
        axes[r, 2 * c + 1].imshow(overlay(image, mask), interpolation="nearest")
        axes[r, 2 * c + 1].set_title(", ".join(CLASSES[j] for j in sorted(_present(mask))) or "no clothing",
                                     fontsize=7)
    _legend(fig)
    return fig


# --- provenance ---------------------------------------------------------------------------------------------------
def provenance_table(profile) -> pd.DataFrame:
    """Per complete run of the profile: model, variant, run id, commit, device, seed, epochs, training time."""
    p = _profile(profile)
    df = find_runs(p)
    rows = []
    for r in df[df["complete"]].itertuples():
        run_dir = Path(r.run_dir)
        prov = runs.read_json(run_dir / "provenance.json") if (run_dir / "provenance.json").is_file() else {}
        hist = run_dir / "history.csv"
        h = pd.read_csv(hist) if hist.is_file() else pd.DataFrame()
        rows.append({"model": r.model, "variant": r.variant, "run id": r.run_id,
                     "current parameters": "yes" if r.matches_profile else "no",
                     "commit": prov.get("git_commit") or MISSING,
                     "device": prov.get("device_description") or prov.get("device") or MISSING,
                     "seed": prov.get("seed", MISSING), "epochs": int(len(h)),
                     "train time (s)": float(h["seconds"].sum()) if "seconds" in h else MISSING,
                     "resumed": len(prov.get("resumes", [])),
                     "finished": r.finished or MISSING, "evaluated (test)": "yes" if r.evaluated else "no"})
    cols = ["model", "variant", "run id", "current parameters", "commit", "device", "seed", "epochs",
            "train time (s)", "resumed", "finished", "evaluated (test)"]
    return _no_nan(pd.DataFrame(rows, columns=cols))
