"""The IoUs of :mod:`clothparse.evaluation.metrics` as fastai metrics, accumulated over an epoch's batches."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from fastai.learner import Metric

from clothparse.categories import NUM_CLASSES
from clothparse.evaluation.metrics import ConfusionMatrix, pooled_iou

__all__ = ["PooledIoU"]


class _ConfusionMetric(Metric):
    """Accumulates a ConfusionMatrix from ``learn.pred`` (seg logits, first item of a tuple) vs ``learn.yb[0]``."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        self.num_classes = num_classes
        self.cm = ConfusionMatrix(num_classes)

    def reset(self):
        self.cm.reset()

    def accumulate(self, learn):
        pred = learn.pred
        seg = pred if isinstance(pred, torch.Tensor) else pred[0]
        self.cm.update(seg.argmax(dim=1), learn.yb[0])

    def _value(self, m: np.ndarray) -> float:
        raise NotImplementedError

    @property
    def value(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._value(self.cm.matrix)


class PooledIoU(_ConfusionMetric):
    """The paper's "IoU excl. bg" (or "IoU overall" with ``include_background=True``), as a 0–1 fraction."""

    def __init__(self, include_background: bool = False, num_classes: int = NUM_CLASSES):
        super().__init__(num_classes)
        self.include_background = include_background

    def _value(self, m):
        return pooled_iou(m, self.include_background)

    @property
    def name(self):
        return "iou_overall" if self.include_background else "iou_excl_bg"
