"""Table 3 of the paper: the pixel confusion matrices (row % and column %), ours beside the paper's —
as tables, their diagonals (recall / precision per class), the largest confusions, and annotated
seaborn heatmaps on one colour scale.

Rows are ground truth, columns predicted, as in the paper.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from clothparse.categories import NUM_CLASSES
from clothparse.evaluation.metrics import column_percent, row_percent
from clothparse.evaluation.paper import table3_matrices
from clothparse.report.common import DIFF, OURS, PAPER, TABLE3_LABELS, _model_name, _no_nan
from clothparse.runs import RunDir


def confusion(run_dir, split: str = "test", variant: str = "plain") -> np.ndarray:
    """The 9×9 pixel confusion matrix (int64, rows = ground truth) of an evaluation."""
    path = RunDir(run_dir).evaluation(split).require().confusion_path(variant)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (no evaluation of the injection variant {variant!r})")
    cm = np.load(path, allow_pickle=False)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"{path}: expected a {NUM_CLASSES}×{NUM_CLASSES} matrix, got {cm.shape}")
    return cm


def _percents(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row % and column % of a count matrix (NaN for a class with no pixels)."""
    return row_percent(cm), column_percent(cm)


def _matrix_frame(m: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(m, index=pd.Index(TABLE3_LABELS, name="ground truth"),
                      columns=pd.Index(TABLE3_LABELS, name="predicted"))
    return _no_nan(df)


# --- tables --------------------------------------------------------------------------------------------
def table3(run_dir, split: str = "test", variant: str = "plain") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3: the row-% (where each class's GT pixels go) and column-% (what GT lies under each
    predicted class) confusion matrices, as two DataFrames (a class with no pixels shows "—")."""
    rows, cols = _percents(confusion(run_dir, split, variant))
    return _matrix_frame(rows), _matrix_frame(cols)


def paper_table3() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table 3 (row % and column %), as DataFrames."""
    r, c = table3_matrices()
    return _matrix_frame(r), _matrix_frame(c)


def table3_diagonal(run_dir, split: str = "test", variant: str = "plain") -> pd.DataFrame:
    """The diagonals of Table 3 — per class, the share of GT pixels predicted right (row %, recall) and
    of predicted pixels that are right (column %, precision) — ours beside the paper's."""
    ours_r, ours_c = (np.diag(m) for m in _percents(confusion(run_dir, split, variant)))
    pr, pc = (np.diag(m) for m in table3_matrices())
    df = pd.DataFrame({("row % (recall)", OURS): ours_r, ("row % (recall)", PAPER): pr,
                       ("row % (recall)", DIFF): ours_r - pr,
                       ("column % (precision)", OURS): ours_c, ("column % (precision)", PAPER): pc,
                       ("column % (precision)", DIFF): ours_c - pc},
                      index=pd.Index(TABLE3_LABELS, name="class"))
    return _no_nan(df)


def table3_top_confusions(run_dir, k: int = 8, split: str = "test", variant: str = "plain") -> pd.DataFrame:
    """The ``k`` largest off-diagonal row-% cells of our matrix (GT class → predicted class), with the
    paper's value of the same cell (the paper discusses dress vs skirt, top vs overtop, shorts vs skirt)."""
    ours = _percents(confusion(run_dir, split, variant))[0]
    paper = table3_matrices()[0]
    cells = [(i, j) for i in range(NUM_CLASSES) for j in range(NUM_CLASSES) if i != j and np.isfinite(ours[i, j])]
    cells.sort(key=lambda ij: -ours[ij])
    columns = ["ground truth", "predicted as", f"{OURS} (row %)", f"{PAPER} (row %)"]
    rows = [dict(zip(columns, (TABLE3_LABELS[i], TABLE3_LABELS[j], ours[i, j], paper[i, j]))) for i, j in cells[:k]]
    return pd.DataFrame(rows, columns=columns)


# --- heatmaps ------------------------------------------------------------------------------------------
#: One colour scale for every Table 3 panel, ours and the paper's, so equal colours mean equal shares.
HEATMAP_SCALE = {"cmap": "Blues", "vmin": 0.0, "vmax": 100.0}


def _heatmap(ax, m: np.ndarray, title: str) -> None:
    """An annotated percentage heatmap; NaN cells (a class with no pixels) stay blank."""
    import seaborn as sns

    sns.heatmap(np.asarray(m, dtype=float), ax=ax, annot=True, fmt=".1f", annot_kws={"fontsize": 6.5},
                xticklabels=TABLE3_LABELS, yticklabels=TABLE3_LABELS, square=True, cbar=False,
                linewidths=0.3, linecolor="white", **HEATMAP_SCALE)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")


def _heatmap_figure(panels: list[list[tuple[np.ndarray, str]]]):
    """Rows of heatmap panels ``(matrix, title)`` and one colour bar shared by all of them."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    n_rows, n_cols = len(panels), len(panels[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5.6 * n_cols + 0.8, 5.2 * n_rows), squeeze=False,
                             layout="constrained")
    for row, row_axes in zip(panels, axes):
        for (m, title), ax in zip(row, row_axes):
            _heatmap(ax, m, title)
    scale = ScalarMappable(Normalize(HEATMAP_SCALE["vmin"], HEATMAP_SCALE["vmax"]), HEATMAP_SCALE["cmap"])
    fig.colorbar(scale, ax=axes, shrink=0.6, label="% of the row (or column)")
    return fig


def figure_confusion(run_dir, split: str = "test", variant: str = "plain", paper: bool = True):
    """Table 3 as annotated heatmaps: our row % and column % (and the paper's below them when ``paper``),
    on one colour scale. Cells of a class with no pixels stay blank."""
    rows, cols = _percents(confusion(run_dir, split, variant))
    name = _model_name(run_dir)
    panels = [[(rows, f"ours ({name}): row % — where GT pixels go"),
               (cols, f"ours ({name}): column % — GT under predicted pixels")]]
    if paper:
        panels.append(_paper_panels())
    return _heatmap_figure(panels)


def _paper_panels() -> list[tuple[np.ndarray, str]]:
    pr, pc = table3_matrices()
    return [(pr, "paper, Table 3: row %"), (pc, "paper, Table 3: column %")]


def figure_paper_confusion():
    """The paper's Table 3 as two annotated heatmaps (row %, column %)."""
    return _heatmap_figure([_paper_panels()])
