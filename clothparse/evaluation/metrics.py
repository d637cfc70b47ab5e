"""Segmentation and multilabel metrics of the paper (section 4.2, Tables 2–4), computed on our runs.

What the paper's IoUs mean: "IoU excl. bg" and "IoU overall" are **pooled** IoUs over the whole test
set, ``Σ TP / Σ (TP + FP + FN)`` over the clothing classes, resp. all classes — not the mean of
per-class IoUs (the usual mIoU, reported beside them, labelled); only so does the paper's Table 3 give
back its Table 2 (:func:`clothparse.evaluation.paper.table2_from_table3`). "IoU Mask" is the IoU of clothing vs
background with the clothing classes merged.

Other clothing parsers report other numbers: CCP's paper pixel accuracy (``trace / sum`` of the matrix), SCHP and
SegFormer-based parsers the mean IoU *with* background (LIP, ATR). :func:`iou_summary` gives both beside the
paper's, labelled (:data:`SUMMARY_LABELS`), so a reader compares like with like.

Confusion matrices have rows = ground truth, columns = predicted, as the paper's Table 3.
"""
from __future__ import annotations

import numpy as np
import torch

from clothparse.categories import CLASSES, CLOTHING, NUM_CLASSES

__all__ = [
    "ConfusionMatrix", "per_class_iou", "pooled_iou", "mean_iou", "mask_iou", "row_percent", "column_percent",
    "iou_summary", "multilabel_scores", "PAPER_F_AVERAGE", "per_image_confusion", "pixel_accuracy", "SUMMARY_LABELS",
    "summary_text",
]


# --- the confusion matrix ---------------------------------------------------------------------
class ConfusionMatrix:
    """Pixel confusion matrix accumulated over batches (rows = ground truth, columns = predicted).

    ``update`` counts with ``torch.bincount`` on the tensors' own device into int64 and never
    synchronises it; the counts move to the CPU only when ``.matrix`` is read. Labels outside
    ``0..num_classes-1`` (other than ``ignore_index`` in the target) are counted apart and make
    ``.matrix`` raise ``ValueError`` — checking them at ``update`` would cost a device sync per batch.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int | None = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self._matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._pending: torch.Tensor | None = None   # K·K + 2 counts on the last update's device
        self._invalid = 0

    def update(self, pred, target) -> "ConfusionMatrix":
        """Count the pixel pairs of ``pred`` and ``target`` (integer tensors or arrays of equal shape)."""
        pred, target = torch.as_tensor(pred), torch.as_tensor(target)
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
        for name, t in (("pred", pred), ("target", target)):
            if t.dtype.is_floating_point or t.dtype.is_complex:
                raise TypeError(f"{name} must hold integer class indices, got {t.dtype} (argmax the logits first)")
        if pred.device != target.device:
            target = target.to(pred.device)
        k = self.num_classes
        p, t = pred.reshape(-1).long(), target.reshape(-1).long()
        valid = (p >= 0) & (p < k) & (t >= 0) & (t < k)
        # Bucket K·K collects ignored pixels, K·K+1 the invalid ones; both are dropped when read.
        idx = torch.where(valid, t * k + p, torch.full_like(p, k * k + 1))
        if self.ignore_index is not None:
            idx = torch.where(t == self.ignore_index, torch.full_like(idx, k * k), idx)
        counts = torch.bincount(idx, minlength=k * k + 2)
        if self._pending is not None and self._pending.device != counts.device:
            self._flush()
        self._pending = counts if self._pending is None else self._pending + counts
        return self

    def _flush(self) -> None:
        if self._pending is None:
            return
        counts = self._pending.cpu().numpy().astype(np.int64)
        self._pending = None
        k = self.num_classes
        self._matrix += counts[: k * k].reshape(k, k)
        self._invalid += int(counts[k * k + 1])

    @property
    def matrix(self) -> np.ndarray:
        """The counts as a K×K ``np.int64`` array (a copy)."""
        self._flush()
        if self._invalid:
            raise ValueError(f"{self._invalid} pixels had a label outside 0..{self.num_classes - 1} "
                             f"(and not ignore_index={self.ignore_index}); call reset() to start over")
        return self._matrix.copy()

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """A new matrix holding the counts of both (e.g. from two evaluation shards)."""
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {self.num_classes}-class and {other.num_classes}-class matrices")
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        for src in (self, other):
            src._flush()
            out._matrix += src._matrix
            out._invalid += src._invalid
        return out

    __add__ = merge

    def __array__(self, dtype=None, copy=None):
        m = self.matrix
        return m if dtype is None else m.astype(dtype)

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.matrix.sum())})"


def per_image_confusion(pred, target, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """One confusion matrix per image: B×K×K int32 counts (rows = ground truth) of ``pred`` vs ``target``
    (B×H×W class indices). Their sum over images is the pooled matrix; any subset of images, or a bootstrap
    resample of them, is scored from these alone. Labels outside ``0..K-1`` are a ``ValueError``."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target).to(torch.as_tensor(pred).device)
    if pred.shape != target.shape or pred.ndim < 2:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must be equal B×… shapes")
    k, b = int(num_classes), pred.shape[0]
    p, t = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    bad = (p < 0) | (p >= k) | (t < 0) | (t >= k)
    if bool(bad.any()):
        raise ValueError(f"{int(bad.sum())} pixels have a label outside 0..{k - 1}")
    offset = torch.arange(b, device=p.device).unsqueeze(1) * (k * k)
    counts = torch.bincount((offset + t * k + p).reshape(-1), minlength=b * k * k)
    return counts.reshape(b, k, k).to(torch.int32)


# --- functions of a matrix ------------------------------------------------------------------------
def _as_matrix(cm) -> np.ndarray:
    """K×K counts as float64; a stack of them (…×K×K) is scored matrix by matrix."""
    m = cm.matrix if isinstance(cm, ConfusionMatrix) else np.asarray(cm)
    if m.ndim < 2 or m.shape[-2] != m.shape[-1]:
        raise ValueError(f"a confusion matrix must be square, got shape {m.shape}")
    return m.astype(np.float64)


def _tp_fp_fn(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diagonal(m, axis1=-2, axis2=-1)
    return tp, m.sum(axis=-2) - tp, m.sum(axis=-1) - tp


def _ratio(num, den):
    """num / den with NaN (no warning) where den == 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out if out.ndim else float(out)


def per_class_iou(cm) -> np.ndarray:
    """IoU of each class, TP / (TP + FP + FN); NaN for a class absent from both ground truth and prediction."""
    tp, fp, fn = _tp_fp_fn(_as_matrix(cm))
    return _ratio(tp, tp + fp + fn)


def pooled_iou(cm, include_background: bool = False) -> float:
    """The paper's "IoU excl. bg" / "IoU overall": Σ TP / Σ (TP + FP + FN) over the clothing / all classes."""
    tp, fp, fn = _tp_fp_fn(_as_matrix(cm))
    s = slice(0 if include_background else 1, None)
    return _ratio(tp[..., s].sum(-1), (tp + fp + fn)[..., s].sum(-1))


def mean_iou(cm, include_background: bool = False) -> float:
    """The usual mIoU of one matrix: mean of the per-class IoUs over the classes present in the ground truth or
    the prediction. A class absent from both has no IoU (0/0) and is left out of the mean, not counted as 0
    or 1; a class only predicted, or only in the ground truth, counts with IoU 0. NaN if no class is present."""
    iou = per_class_iou(cm)[0 if include_background else 1:]
    if np.all(np.isnan(iou)):
        return float("nan")
    return float(np.nanmean(iou))


def pixel_accuracy(cm) -> float:
    """The share of pixels whose class is right, over all classes (background included): trace / sum; NaN for
    an empty matrix. CCP's paper reports it (88.23 % there)."""
    m = _as_matrix(cm)
    return _ratio(np.trace(m, axis1=-2, axis2=-1), m.sum((-2, -1)))


def mask_iou(cm) -> float:
    """The paper's "IoU Mask": IoU of clothing (all clothing classes merged) vs background."""
    m = _as_matrix(cm)
    tp = m[..., 1:, 1:].sum((-2, -1))
    return _ratio(tp, tp + m[..., 0, 1:].sum(-1) + m[..., 1:, 0].sum(-1))


def row_percent(cm) -> np.ndarray:
    """Percent of each ground-truth class's pixels per predicted class (Table 3, first matrix)."""
    m = _as_matrix(cm)
    return 100.0 * _ratio(m, m.sum(axis=-1, keepdims=True))


def column_percent(cm) -> np.ndarray:
    """Percent of each predicted class's pixels per ground-truth class (Table 3, second matrix)."""
    m = _as_matrix(cm)
    return 100.0 * _ratio(m, m.sum(axis=-2, keepdims=True))


def iou_summary(cm, class_names: tuple[str, ...] = CLASSES) -> dict:
    """All IoU variants in percent, labelled: pooled (the paper's) and mean (mIoU), mask, pixel accuracy (the
    peers'), per class. :data:`SUMMARY_LABELS` names each key in words."""
    m = _as_matrix(cm)
    if len(class_names) != m.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {m.shape[0]}-class matrix")
    pc = per_class_iou(m)
    return {
        "pooled_excl_bg": 100 * pooled_iou(m, include_background=False),
        "pooled_overall": 100 * pooled_iou(m, include_background=True),
        "mean_excl_bg": 100 * mean_iou(m, include_background=False),
        "mean_overall": 100 * mean_iou(m, include_background=True),
        "mask": 100 * mask_iou(m),
        "pixel_accuracy": 100 * pixel_accuracy(m),
        "per_class": {name: float(100 * v) for name, v in zip(class_names, pc)},
    }


#: The summary's numbers in words, in the order they are printed: the paper's pooled IoUs, then what the peers
#: report (CCP: pixel accuracy; SCHP, SegFormer parsers: mean IoU with background).
SUMMARY_LABELS: dict[str, str] = {
    "pooled_excl_bg": "IoU excl. background, pooled (the paper's)",
    "pooled_overall": "IoU overall, pooled (the paper's)",
    "mask": "IoU clothing vs background (the paper's IoU Mask)",
    "pixel_accuracy": "pixel accuracy, all classes (as CCP reports)",
    "mean_overall": "mean IoU with background (as SCHP, SegFormer parsers report)",
    "mean_excl_bg": "mean IoU excl. background",
}


def summary_text(summary: dict) -> str:
    """A summary of :func:`iou_summary` as aligned lines ``label  value %``; a number the summary lacks (an
    evaluation written before it was computed) is shown as "–"."""
    width = max(map(len, SUMMARY_LABELS.values()))
    lines = []
    for key, label in SUMMARY_LABELS.items():
        v = summary.get(key)
        lines.append(f"{label:<{width}}  " + ("–" if v is None or np.isnan(v) else f"{v:6.2f} %"))
    return "\n".join(lines)


# --- multilabel (ClassBranch, Table 4) ----------------------------------------------------------------
#: The average the paper most likely used for Table 4's F1/F2. The paper does not say; it trained with
#: fastai, whose multilabel ``F1ScoreMulti``/``FBetaMulti`` default to ``average='macro'``. All three
#: averages are reported; this only picks the one set beside the paper's numbers.
PAPER_F_AVERAGE = "macro"


def _fbeta(tp, fp, fn, beta: float):
    """F-beta from counts; 1.0 where there is nothing to find and nothing was predicted (tp+fp+fn = 0)."""
    b2 = beta * beta
    num = (1 + b2) * tp
    den = num + b2 * fn + fp
    out = np.ones(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def multilabel_scores(y_true, y_pred, class_names: tuple[str, ...] = CLOTHING) -> dict:
    """Table 4's scores of multilabel predictions, in percent.

    ``y_true``, ``y_pred``: B×C bool (thresholded ClassBranch output vs presence). Returns
    ``{"f1": {"samples", "micro", "macro"}, "f2": {...}, "exact_match", "per_class_accuracy": {name: ...},
    "n_images"}``. ``samples`` averages F over images, ``micro`` pools the counts of all labels,
    ``macro`` averages F over classes. An image (samples) or class (macro) with no true and no predicted
    label scores 100 (``zero_division=1`` in scikit-learn terms). ``exact_match`` is the paper's
    "% of images": the share of images whose whole predicted label set is right.
    """
    t = np.asarray(torch.as_tensor(y_true).cpu()) if isinstance(y_true, torch.Tensor) else np.asarray(y_true)
    p = np.asarray(torch.as_tensor(y_pred).cpu()) if isinstance(y_pred, torch.Tensor) else np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must both be B×C")
    if t.shape[1] != len(class_names):
        raise ValueError(f"{t.shape[1]} label columns but {len(class_names)} class names")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.dtype != bool and not np.isin(a, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (0/1); threshold the logits first")
    t, p = t.astype(bool), p.astype(bool)
    if t.shape[0] == 0:
        raise ValueError("no images to score")
    tp, fp, fn = (t & p), (~t & p), (t & ~p)
    out: dict = {}
    for key, beta in (("f1", 1.0), ("f2", 2.0)):
        out[key] = {
            "samples": 100 * float(_fbeta(tp.sum(1), fp.sum(1), fn.sum(1), beta).mean()),
            "micro": 100 * float(_fbeta(tp.sum(), fp.sum(), fn.sum(), beta)),
            "macro": 100 * float(_fbeta(tp.sum(0), fp.sum(0), fn.sum(0), beta).mean()),
        }
    out["exact_match"] = 100 * float((t == p).all(axis=1).mean())
    out["per_class_accuracy"] = {n: 100 * float(v) for n, v in zip(class_names, (t == p).mean(axis=0))}
    out["n_images"] = int(t.shape[0])
    return out
