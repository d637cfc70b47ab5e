"""What every page of the report shares: how a table shows a missing number and a comparison with the
paper (:data:`MISSING`, :data:`SOURCES`, :data:`IOU_COLUMNS`), display rounding, model names, reading a
run's evaluation, and the small pieces the image figures are built of (cell size, bare axes, the class
legend).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from clothparse.categories import CLASSES, NUM_CLASSES, PALETTE, SHORT_LABELS
from clothparse.evaluation.paper import TABLE2_MODEL_NAMES
from clothparse.profiles import load_profile
from clothparse.runs import RunDir, read_json

#: How a missing number is shown (tables never hold NaN).
MISSING = "—"
#: Row labels of a comparison: ours, the paper's, ours − paper.
OURS, PAPER, DIFF = "ours", "paper", "ours − paper"
SOURCES: tuple[str, str, str] = (OURS, PAPER, DIFF)
#: The row under *ours* where a profile trained several seeds: *ours* is their mean, this their standard deviation.
SEED_SD = "seed sd"
#: Table 2 / Table 1 columns: the paper's pooled IoUs, the mask IoU, per-class IoU, then the usual mean IoU.
MIOU = "mIoU excl. bg (mean)"
IOU_COLUMNS: tuple[str, ...] = ("IoU excl. bg", "IoU overall", "IoU Mask", *SHORT_LABELS, MIOU)
#: Class labels as printed in the paper's Table 3.
TABLE3_LABELS: tuple[str, ...] = ("bg", "top", "overTop", "pants", "shorts", "skirt", "dress", "shoe", "bag")
#: Display names of the models the paper does not have (the others take their Table 2 row name).
EXTRA_MODELS: dict[str, str] = {"smp_unet": "smp U-Net (not in the paper)"}


# --- tables ----------------------------------------------------------------------------------------------
class GroupedTable(pd.DataFrame):
    """A DataFrame that a notebook shows as several narrower tables, one per column group, each with the full
    index: Table 2 holds 13 numbers per row, more than a page's width at a readable size. The groups are
    ``df.attrs["column_groups"]``: ``(caption, [column, ...])`` pairs; columns in no group follow in a last
    one. As data it is a DataFrame like any other (only ``_repr_html_`` differs, and it survives
    :func:`rounded` and the other element-wise operations, which keep the type and the attrs)."""

    @property
    def _constructor(self):
        return GroupedTable

    def _repr_html_(self) -> str | None:
        groups = [(caption, [c for c in cols if c in self.columns]) for caption, cols in
                  self.attrs.get("column_groups", ())]
        grouped = {c for _, cols in groups for c in cols}
        rest = [c for c in self.columns if c not in grouped]
        groups = [g for g in groups + [("", rest)] if g[1]]
        if len(groups) < 2:
            return super()._repr_html_()
        parts = []
        for caption, cols in groups:
            title = f'<p class="clothparse-table-group"><em>{caption}</em></p>' if caption else ""
            parts.append(title + pd.DataFrame(self[cols])._repr_html_())
        return "\n".join(parts)


def grouped(df: pd.DataFrame, groups: Iterable[tuple[str, Iterable[str]]]) -> GroupedTable:
    """``df`` shown as one table per column group (see :class:`GroupedTable`); its data unchanged."""
    out = GroupedTable(df)
    out.attrs = {**df.attrs, "column_groups": [(caption, list(cols)) for caption, cols in groups]}
    return out


#: How Table 1 and Table 2 are shown: the paper's pooled IoUs and the mean IoU, then the IoU of each class.
IOU_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Pooled IoUs (the paper's metrics) and the mean of the per-class IoUs, %", ("IoU excl. bg", "IoU overall",
                                                                                 "IoU Mask", MIOU)),
    ("IoU per class, %", tuple(SHORT_LABELS)),
)


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


def _profile(profile):
    """The typed profile of a name, path, mapping or :class:`~clothparse.profiles.Profile`."""
    return load_profile(profile)


def main_variant(profile) -> str:
    """The data variant a profile's models train on: ``refined`` where the profile refines, else ``base``."""
    return _profile(profile).main_variant


def model_label(model: str) -> str:
    """The paper's Table 2 name of a model (``"Our model (extended_unet)"``)."""
    inverse = {v: k for k, v in TABLE2_MODEL_NAMES.items()}
    if model in inverse:
        return f"{inverse[model]} ({model})"
    return EXTRA_MODELS.get(model, model)


# --- a run's files ---------------------------------------------------------------------------------------
def run_store(run_dir, split: str = "test"):
    """The store a run was evaluated on (``<work_dir>/<profile>/stores/<store_key>``), opened read-only."""
    return RunDir(run_dir).load_store(split)


def eval_metrics(run_dir, split: str = "test") -> dict:
    """``evaluation/<split>/metrics.json`` of a run."""
    return RunDir(run_dir).evaluation(split).metrics()


def _variant_summary(run_dir, split: str, variant: str) -> dict:
    variants = eval_metrics(run_dir, split).get("variants", {})
    if variant not in variants:
        raise KeyError(f"{RunDir(run_dir).evaluation(split).metrics_path}: no injection variant {variant!r} "
                       f"(has {sorted(variants)})")
    return variants[variant]


def _check_store(store, run_dir, split: str) -> None:
    """Refuse a store other than the one the run was evaluated on (its rows would be other images)."""
    want = eval_metrics(run_dir, split)["store_key"]
    if store.meta.get("key") != want:
        raise ValueError(f"{run_dir} was evaluated on store {want[:12]}…, not on {store.meta.get('key', '?')[:12]}…")


def _json_or_empty(path: Path) -> dict:
    """An optional record of a run (provenance.json, metrics.json): {} when the file is not there."""
    return read_json(path) if Path(path).is_file() else {}


def _model_name(run_dir) -> str:
    run = RunDir(run_dir)
    return run.params().get("model", run.id)


# --- image figures ---------------------------------------------------------------------------------------
def _legend(fig, classes: Iterable[int] = range(NUM_CLASSES)) -> None:
    """The class colours, below the figure."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=np.asarray(PALETTE[c]) / 255, edgecolor="0.4", label=CLASSES[c]) for c in classes]
    ncol = len(handles) if fig.get_figwidth() >= 7.5 else -(-len(handles) // 2)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


def _cell_size(shape: tuple[int, int], height: float = 2.3) -> tuple[float, float]:
    """Width and height (inches) of a panel showing an image of ``shape`` (H, W) at ``height``."""
    h, w = shape
    return height * w / h, height


def _clean(ax) -> None:
    """An axis for an image: no ticks, no frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)

