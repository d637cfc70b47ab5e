"""Training histories of runs: the training curves (:func:`figure_history`), a run's ``history.csv`` as a
table, and one run at a glance (:func:`run_overview`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from clothparse.report.common import _json_or_empty, _no_nan
from clothparse.runs import RunDir, loss_weights

#: Loss terms of ``history.csv`` (``train_<term>``, ``valid_<term>``), named as the profile's ``loss`` weights.
_LOSS_TERMS = ("seg", "cls", "box")
_VALID_IOU = "valid IoU excl. bg (pooled, %)"


def _history(run_dir) -> pd.DataFrame:
    path = RunDir(run_dir).history_path
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
    params = RunDir(run_dir).params()
    return f"{params.get('model', '?')} ({params.get('variant', '?')})"


def _epoch_axes(axes) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _figure_one_run(run_dir):
    """Total loss (train/valid), each loss term × its weight, valid pooled IoU excl. bg."""
    import matplotlib.pyplot as plt

    h = _history(run_dir)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    for col, style in (("train_loss", "-"), ("valid_loss", "--")):
        if col in h:
            axes[0].plot(h["x"], h[col], style, marker="o", ms=3, label=col.replace("_", " "))
    axes[0].set_title("compound loss")
    # Weighted as the run trained (the paper chose its weights so that the terms contribute about evenly):
    # a term that dominates here is what a rebalanced `loss` profile key is for.
    weights = loss_weights(RunDir(run_dir).params())
    for i, term in enumerate(_LOSS_TERMS):
        wt = weights[term]
        for part, style in (("train", "-"), ("valid", "--")):
            col = f"{part}_{term}"
            if col in h and h[col].notna().any():
                axes[1].plot(h["x"], wt * h[col], style, color=f"C{i}", marker="o", ms=3,
                             label=f"{part} {term} ×{wt:g}")
    axes[1].set_title("loss terms × their weights")
    if "iou_excl_bg" in h:
        axes[2].plot(h["x"], 100 * h["iou_excl_bg"], marker="o", ms=3, color="C3")
    axes[2].set_title(_VALID_IOU)
    _epoch_axes(axes)
    for ax in axes:
        _phase_boundary(ax, h)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(_run_label(run_dir), fontsize=10)
    return fig


def _figure_runs(run_dirs: list):
    """Valid loss and valid IoU of each run, one colour per run."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    for i, rd in enumerate(run_dirs):
        h, label, colour = _history(rd), _run_label(rd), f"C{i % 10}"
        if "valid_loss" in h:
            axes[0].plot(h["x"], h["valid_loss"], marker="o", ms=3, color=colour, label=label)
        if "iou_excl_bg" in h:
            axes[1].plot(h["x"], 100 * h["iou_excl_bg"], marker="o", ms=3, color=colour, label=label)
        if i == 0:
            for ax in axes:
                _phase_boundary(ax, h)
    axes[0].set_title("valid compound loss")
    axes[1].set_title(_VALID_IOU)
    _epoch_axes(axes)
    axes[1].legend(fontsize=7, loc="lower right")
    return fig


def figure_history(run_dirs: Path | str | RunDir | Sequence[Path | str] | pd.DataFrame):
    """Training curves. One run: total loss (train/valid), each loss term, valid pooled IoU excl. bg per
    epoch. Several runs (a list, or :func:`find_runs`'s frame): valid loss and valid IoU of each.
    A dotted line marks the end of the frozen phase."""
    if isinstance(run_dirs, pd.DataFrame):
        run_dirs = list(run_dirs["run_dir"])
    if isinstance(run_dirs, (str, Path, RunDir)):
        run_dirs = [run_dirs]
    run_dirs = list(run_dirs)
    if not run_dirs:
        raise ValueError("no run folder given")
    return _figure_one_run(run_dirs[0]) if len(run_dirs) == 1 else _figure_runs(run_dirs)


def history_table(run_dir) -> pd.DataFrame:
    """``history.csv`` of a run (one row per epoch; the pooled IoU in %), without NaN."""
    h = _history(run_dir).drop(columns="x")
    if "iou_excl_bg" in h:
        h["iou_excl_bg"] = 100 * h["iou_excl_bg"]
        h = h.rename(columns={"iou_excl_bg": _VALID_IOU})
    return _no_nan(h.set_index("global_epoch"))


def run_overview(run_dir) -> pd.DataFrame:
    """A run at a glance: model, data variant, size, schedule, device, epochs, time, final valid IoUs."""
    run = RunDir(run_dir)
    params = run.params()
    prov, metrics = _json_or_empty(run.provenance_path), _json_or_empty(run.metrics_path)
    train = params.get("train", {})
    seconds = float(pd.read_csv(run.history_path)["seconds"].sum()) if run.history_path.is_file() else None
    valid = metrics.get("valid", {})
    rows = [("run folder", str(run.path)), ("model", params.get("model")), ("data variant", params.get("variant")),
            ("input size (H×W)", "×".join(map(str, params.get("size", [])))),
            ("schedule", f"batch {train.get('batch_size')}, {train.get('epochs_frozen')} frozen + "
                         f"{train.get('epochs_unfrozen')} unfrozen epochs, lr_max {train.get('lr_max')}, "
                         f"wd {train.get('wd')}"),
            ("encoder", params.get("encoder_name", "resnet34")),
            ("encoder weights", params.get("encoder_weights") or "random"), ("mixed precision", params.get("amp")),
            ("device", prov.get("device_description") or params.get("device")), ("seed", prov.get("seed")),
            ("commit", prov.get("git_commit")), ("epochs", metrics.get("epochs")),
            ("train time (s)", None if seconds is None else round(seconds, 1)),
            ("valid IoU excl. bg (pooled)", valid.get("pooled_excl_bg")),
            ("valid IoU overall (pooled)", valid.get("pooled_overall")), ("valid IoU Mask", valid.get("mask")),
            ("valid mIoU excl. bg (mean)", valid.get("mean_excl_bg"))]
    return _no_nan(pd.DataFrame(rows, columns=["item", "value"]).set_index("item"))

