"""The paper's reported numbers (Tables 1–5, section 4.1), shipped with the package, and what follows from
them alone.

- :func:`tables`, :func:`table2_row`, :func:`table3_matrices`: the numbers as printed. Source:
  ``clothparse/data/paper_tables.yaml``, a copy of the transcription of the paper's tables.
- :func:`confusion_from_table3`, :func:`table2_from_table3`: Table 3 ⇒ Table 2. The pixel confusion of
  "Our model" rebuilt from Table 3's row and column percentages, and Table 2's IoUs recomputed from it
  with the same code that scores our runs (:func:`clothparse.evaluation.metrics.iou_summary`). That the pooled
  IoUs come back and the mean IoU does not is why this package reads the paper's "IoU excl. bg" and
  "IoU overall" as pooled IoUs.
"""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np
import yaml

from clothparse.categories import CLASSES
from clothparse.evaluation.metrics import iou_summary

#: Row names of Table 2 as the paper prints them → our model names (``build_model``).
TABLE2_MODEL_NAMES: dict[str, str] = {
    "FPN": "fpn",
    "DeepLabV3": "deeplabv3",
    "DeepLabV3+": "deeplabv3plus",
    "Plain U-Net": "unet",
    "Our model": "extended_unet",
    "ClassBranch only": "classbranch_only",
    "Branches": "branches",
}


@lru_cache(maxsize=1)
def tables() -> dict:
    """All transcribed numbers as a nested dict (percentages)."""
    return yaml.safe_load(files("clothparse").joinpath("data/paper_tables.yaml").read_text(encoding="utf-8"))


def table2_row(model: str) -> dict:
    """Table 2 row for a paper row name (``"Our model"``) or a model name (``"extended_unet"``)."""
    t2 = tables()["table2_models"]
    if model in t2:
        return t2[model]
    inverse = {v: k for k, v in TABLE2_MODEL_NAMES.items()}
    if model in inverse:
        return t2[inverse[model]]
    raise KeyError(f"no Table 2 row for {model!r}; known: {sorted(t2)} / {sorted(inverse)}")


def table3_matrices() -> tuple[np.ndarray, np.ndarray]:
    """Table 3 of "Our model" as printed: the row-% and the column-% matrix (9×9 floats, rows = ground truth)."""
    t = tables()
    r = np.asarray(t["table3_confusion_row_percent"], dtype=np.float64)
    c = np.asarray(t["table3_confusion_column_percent"], dtype=np.float64)
    k = r.shape[0]
    if r.shape != (k, k) or c.shape != (k, k):
        raise ValueError(f"Table 3 matrices must be square and equal in size, got {r.shape} and {c.shape}")
    return r, c


# --- Table 3 ⇒ Table 2 ----------------------------------------------------------------------------------
def confusion_from_table3() -> np.ndarray:
    """Relative pixel counts (9×9, summing to 1) of "Our model"'s test confusion, rebuilt from Table 3.

    With R = row %, C = column %, G = ground-truth and P = predicted class totals, every cell satisfies
    ``n_ij = G_i R_ij = P_j C_ij``, so ``log G_i − log P_j = log C_ij − log R_ij`` wherever both are
    positive: an over-determined linear system in ``log G, log P`` solved by weighted least squares,
    each equation weighted by the inverse of its rounding error (the tables print 2 decimals, so the
    error of ``log R`` is about ``0.005 / R``), with ``log G_0 = 0`` fixing the scale. Each cell is then
    the mean of its two estimates ``G_i R_ij`` and ``P_j C_ij``, and the matrix is normalised to sum 1.
    """
    r, c = table3_matrices()
    k = r.shape[0]
    ii, jj = np.nonzero((r > 0) & (c > 0))
    a = np.zeros((len(ii) + 1, 2 * k))
    a[np.arange(len(ii)), ii] = 1.0
    a[np.arange(len(ii)), k + jj] = -1.0
    b = np.log(c[ii, jj]) - np.log(r[ii, jj])
    w = 1.0 / np.sqrt(1.0 / r[ii, jj] ** 2 + 1.0 / c[ii, jj] ** 2)
    # Last equation pins log G_0 = 0 (the system only determines ratios); heavy weight to hold it exactly.
    a[-1, 0] = 1.0
    w = np.append(w, 1e6)
    b = np.append(b, 0.0)
    x, *_ = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)
    g, p = np.exp(x[:k]), np.exp(x[k:])
    n = 0.5 * (g[:, None] * r + p[None, :] * c) / 100.0
    return n / n.sum()


def table3_diagonal_iou() -> np.ndarray:
    """Each class's IoU from Table 3's two diagonal percentages alone, ``1 / (100/R_cc + 100/C_cc − 1)``
    (percent): it needs no rebuilt class totals, so it checks the rebuild independently."""
    r, c = (np.diag(m) for m in table3_matrices())
    return 100.0 / (100.0 / r + 100.0 / c - 1.0)


def table2_from_table3():
    """Table 2's IoUs of "Our model" beside the same IoUs recomputed from Table 3 (DataFrame, percent; NaN
    where a column has no number).

    One row per class, then the pooled rows (excl. bg, overall), the mask, and the mean IoU (mIoU,
    which the paper does not report: its "IoU" columns are pooled). The column "Table 3 diagonal" is
    :func:`table3_diagonal_iou`: where it too differs from Table 2 (shorts, skirt), the two printed
    tables disagree with each other, whatever the reconstruction.
    """
    import pandas as pd

    paper = table2_row("Our model")
    diagonal = table3_diagonal_iou()
    s = iou_summary(confusion_from_table3())
    rows = [(name, paper["per_class"][i], s["per_class"][name], diagonal[i]) for i, name in enumerate(CLASSES)]
    rows += [("IoU excl. bg (pooled)", paper["iou_excl_bg"], s["pooled_excl_bg"], np.nan),
             ("IoU overall (pooled)", paper["iou_overall"], s["pooled_overall"], np.nan),
             ("IoU Mask", paper["iou_mask"], s["mask"], np.nan),
             ("mean IoU excl. bg (not in paper)", float(np.mean(paper["per_class"][1:])), s["mean_excl_bg"], np.nan),
             ("mean IoU overall (not in paper)", float(np.mean(paper["per_class"])), s["mean_overall"], np.nan)]
    df = pd.DataFrame(rows, columns=["metric", "paper Table 2", "from Table 3", "Table 3 diagonal"]).set_index("metric")
    df["difference"] = df["from Table 3"] - df["paper Table 2"]
    return df
