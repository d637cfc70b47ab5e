"""Figures of a run's predictions on its qualitative sample (``evaluation/<split>/predictions.npz``):
Figure 5 (the "no dress" prior on images without a dress) and Figure 6 (images sorted by loss, with
failure cases), and the selection behind Figure 6 as a table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from clothparse.categories import CLASSES, colorize
from clothparse.masks import classes_present
from clothparse.report.common import _cell_size, _check_store, _clean, _legend, run_store
from clothparse.runs import RunDir

DRESS = CLASSES.index("dress")
LOSS_GROUPS = ("highest loss", "middle loss", "lowest loss", "failure cases")


def _predictions(run_dir, split: str) -> dict[str, np.ndarray]:
    """``rows`` (store rows of the sample) and one predicted-mask array per injection variant."""
    path = RunDir(run_dir).evaluation(split).require().predictions_path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if "rows" not in out or "plain" not in out:
        raise ValueError(f"{path}: expected arrays 'rows' and 'plain', got {sorted(out)}")
    return out


def _store_of(run_dir, store, split: str):
    """The given store (checked to be the run's evaluation store) or the run's own."""
    store = store if store is not None else run_store(run_dir, split)
    _check_store(store, run_dir, split)
    return store


# --- Figure 5 ----------------------------------------------------------------------------------------------
def figure_no_dress(run_dir, store=None, n: int = 3, split: str = "test", min_fraction: float = 0.005):
    """Figure 5: images whose ground truth has no dress, most dress pixels in the plain prediction first;
    rows: image, prediction without prior, prediction with the 'no dress' prior, ground truth.
    The title counts the sample's dress-free images with a dress predicted on ``min_fraction`` of the image."""
    import matplotlib.pyplot as plt

    store = _store_of(run_dir, store, split)
    preds = _predictions(run_dir, split)
    if "no_dress" not in preds:
        raise KeyError(f"{run_dir}: predictions.npz has no 'no_dress' variant (re-run evaluate)")
    rows = preds["rows"]
    gt = np.asarray(store.masks[np.sort(rows)])[np.argsort(np.argsort(rows))]  # memmap reads in order
    dress_px = (preds["plain"] == DRESS).sum(axis=(1, 2))
    candidates = np.flatnonzero(~(gt == DRESS).any(axis=(1, 2)))
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
        panels = (image, colorize(preds["plain"][k]), colorize(preds["no_dress"][k]), colorize(gt[k]))
        for r, panel in enumerate(panels):
            ax = axes[r, col]
            ax.imshow(panel, interpolation="nearest")
            _clean(ax)
            if col == 0:
                ax.set_ylabel(labels[r], fontsize=9)
        after = int((preds["no_dress"][k] == DRESS).sum())
        axes[0, col].set_title(f"{store.image_ids[int(rows[k])]}\ndress px {int(dress_px[k])} → {after}", fontsize=8)
    fig.suptitle(f"'no dress' prior on images without a dress\n({n_wrong} of {len(candidates)} such images of the "
                 f"sample have a dress predicted)", fontsize=10)
    _legend(fig)
    return fig


# --- Figure 6 ----------------------------------------------------------------------------------------------
def _loss_rows(sample: pd.DataFrame, n_per_row: int) -> list[tuple[str, pd.DataFrame]]:
    """The highest, middle and lowest loss rows of a loss-sorted sample: ``n_per_row`` images each, disjoint
    while the sample allows (the paper sorted 1,000 images)."""
    n = len(sample)
    k = max(1, min(n_per_row, n // 3)) if n >= 3 else n
    mid = min(max(k, (n - k) // 2), max(0, n - 2 * k)) if n >= 3 * k else max(0, (n - k) // 2)
    return [("highest loss", sample.iloc[:k]), ("middle loss", sample.iloc[mid:mid + k]),
            ("lowest loss", sample.iloc[n - k:].iloc[::-1])]


def _failure_cases(sample, shown: set[int], predicted, store, k: int, min_pixels: int) -> list[tuple[int, str]]:
    """The highest-loss images not ``shown`` whose predicted class set differs from the ground truth's:
    ``(sample index, "+predicted-but-absent −present-but-missed")``, at most ``k``."""
    fails = []
    for r in sample.itertuples():
        if r.row in shown:
            continue
        pred_set = set(classes_present(predicted(int(r.row)), min_pixels))
        gt_set = set(classes_present(store.masks[int(r.row)]))
        if pred_set != gt_set:
            fails.append((r.Index, " ".join([f"+{CLASSES[c]}" for c in sorted(pred_set - gt_set)]
                                            + [f"−{CLASSES[c]}" for c in sorted(gt_set - pred_set)])))
        if len(fails) == k:
            break
    return fails


def loss_sorted_selection(run_dir, store=None, n_per_row: int = 4, split: str = "test",
                          min_fraction: float = 0.005) -> pd.DataFrame:
    """The images of Figure 6: per row (highest / middle / lowest loss / failure cases), the store row,
    image id, loss and — for failure cases — the classes predicted but absent (+) or present but missed (−).

    A class counts as predicted when it covers at least ``min_fraction`` of the image (specks do not count);
    failure cases are the highest-loss images not shown in the other rows whose predicted class set differs
    from the ground truth's. Rows hold ``n_per_row`` images, fewer when the sample has under ``3·n_per_row``.
    """
    store = _store_of(run_dir, store, split)
    preds = _predictions(run_dir, split)
    per_image = RunDir(run_dir).evaluation(split).per_image_path
    per = pd.read_csv(per_image)
    if not {"row", "loss"} <= set(per.columns):
        raise ValueError(f"{per_image}: needs columns row, loss")
    pos = {int(r): i for i, r in enumerate(preds["rows"])}
    sample = per[per["row"].isin(list(pos))].sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
    if sample.empty:
        raise ValueError(f"{run_dir}: no image of per_image.csv is in the qualitative sample")
    picks = _loss_rows(sample, n_per_row)
    h, w = preds["plain"].shape[1:]
    fails = _failure_cases(sample, {int(r) for _, part in picks for r in part["row"]},
                           lambda row: preds["plain"][pos[row]], store, k=len(picks[0][1]),
                           min_pixels=max(1, int(round(min_fraction * h * w))))
    out = [{"group": label, "row": int(r.row), "image_id": store.image_ids[int(r.row)], "loss": float(r.loss),
            "mismatch": ""} for label, part in picks for r in part.itertuples()]
    for i, mismatch in fails:
        r = sample.loc[i]
        out.append({"group": "failure cases", "row": int(r["row"]), "image_id": store.image_ids[int(r["row"])],
                    "loss": float(r["loss"]), "mismatch": mismatch})
    return pd.DataFrame(out, columns=["group", "row", "image_id", "loss", "mismatch"])


def _composite(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, gap: int = 2) -> np.ndarray:
    """image | prediction | ground truth, side by side with white gaps."""
    white = np.full((image.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([image, white, colorize(pred), white, colorize(gt)], axis=1)


def figure_loss_sorted(run_dir, store=None, n_per_row: int = 4, split: str = "test", min_fraction: float = 0.005):
    """Figure 6: the qualitative sample sorted by per-image loss — highest, middle and lowest loss rows
    and a row of failure cases (see :func:`loss_sorted_selection`); each cell is image | prediction | GT."""
    import matplotlib.pyplot as plt

    store = store if store is not None else run_store(run_dir, split)
    sel = loss_sorted_selection(run_dir, store, n_per_row, split, min_fraction)
    preds = _predictions(run_dir, split)
    pos = {int(r): i for i, r in enumerate(preds["rows"])}
    k = int(sel.groupby("group").size().max())
    h, w = preds["plain"].shape[1:]
    cw, ch = _cell_size((h, 3 * w + 4), height=2.0)
    fig, axes = plt.subplots(len(LOSS_GROUPS), k, figsize=(cw * k + 1.0, ch * len(LOSS_GROUPS) + 1.2),
                             squeeze=False, layout="constrained")
    for r, group in enumerate(LOSS_GROUPS):
        part = sel[sel["group"] == group]
        for c, ax in enumerate(axes[r]):
            _clean(ax)
            if c == 0:
                ax.set_ylabel(group, fontsize=9)
                if part.empty:
                    ax.text(0.5, 0.5, "none in the sample", ha="center", va="center", fontsize=8,
                            transform=ax.transAxes)
            if c >= len(part):
                continue
            item = part.iloc[c]
            row = int(item["row"])
            ax.imshow(_composite(np.asarray(store.images[row]), preds["plain"][pos[row]], np.asarray(store.masks[row])),
                      interpolation="nearest")
            ax.set_title(f"loss {item['loss']:.3f}" + (f"\n{item['mismatch']}" if item["mismatch"] else ""), fontsize=8)
    fig.suptitle(f"{len(preds['rows'])} test images sorted by loss; each cell: image | prediction | ground truth",
                 fontsize=10)
    _legend(fig)
    return fig
