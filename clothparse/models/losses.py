"""The paper's compound loss (section 3.3): weighted CE + 0.5 · ClassBranch BCE + 75 · BBBranch smooth L1.

The branch targets (class presence, one box per clothing class) are derived from the target mask
inside the loss, on its device, so they always match the augmented mask of the batch.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from clothparse.categories import NUM_CLASSES
from clothparse.models.boxes import boxes_from_masks

__all__ = ["CompoundLoss", "split_pred"]


def split_pred(pred) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(seg, classes, boxes)`` of a model output: a ``SegOutput``/tuple of 1–3 items or a bare seg tensor."""
    if isinstance(pred, torch.Tensor):
        return pred, None, None
    if isinstance(pred, Sequence) and 1 <= len(pred) <= 3:
        items = list(pred) + [None] * (3 - len(pred))
        if not isinstance(items[0], torch.Tensor):
            raise TypeError("the first model output must be the segmentation logits tensor, "
                            f"got {type(items[0]).__name__}")
        return items[0], items[1], items[2]
    raise TypeError(f"pred must be a tensor or a (seg, classes, boxes) tuple, got {type(pred).__name__}")


class CompoundLoss(nn.Module):
    """Weighted sum of the paper's three loss terms; a fastai ``loss_func`` (called as ``loss(pred, target)``).

    - seg: ``F.cross_entropy`` with class weights (background ``bg_weight``, every clothing class
      ``fg_weight``) and torch's ``'mean'`` reduction, which divides by the *sum of the weights* of the
      pixels' target classes — exactly the paper's "WCE with weight 1 for background, 2 for clothing".
    - cls: ``BCEWithLogits`` of the ClassBranch logits (B×8) against class presence, mean over B×8.
    - box: smooth L1 (torch's default ``beta=1``) between ``sigmoid`` of the BBBranch logits (B×32,
      reshaped B×8×4) and the ground-truth boxes, averaged over the coordinates of the classes *present*
      in each image only (the paper: absent categories do not contribute). On values in [0, 1],
      ``beta=1`` makes it ``0.5·d²``, which is why the paper needs a weight as large as 75.
      When no clothing is present in the whole batch the term is a zero still connected to the graph.

    A branch given as ``None`` (the baselines) contributes nothing. Everything is computed in fp32
    (logits are cast with ``.float()``), so fp16 training keeps an fp32 loss, as in the paper.
    ``reduction='none'`` (set by fastai's ``get_preds(with_loss=True)``) returns :meth:`per_image`.
    """

    def __init__(self, seg_weight: float = 1.0, class_weight: float = 0.5, box_weight: float = 75.0,
                 bg_weight: float = 1.0, fg_weight: float = 2.0, num_classes: int = NUM_CLASSES,
                 reduction: str = "mean"):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.seg_weight, self.class_weight, self.box_weight = float(seg_weight), float(class_weight), float(box_weight)
        self.num_classes = int(num_classes)
        self.reduction = reduction
        # A buffer follows .to(device); fastai does not move the loss, so forward also moves it lazily.
        self.register_buffer("ce_weight", torch.tensor([float(bg_weight)] + [float(fg_weight)] * (num_classes - 1)),
                             persistent=False)
        self._last: dict[str, torch.Tensor] = {}

    # --- the terms --------------------------------------------------------------------------
    def _check(self, seg, classes, boxes, target) -> None:
        if target.ndim != 3 or target.dtype.is_floating_point or target.dtype == torch.bool:
            raise ValueError(f"target must be a B×H×W integer mask, got shape {tuple(target.shape)} {target.dtype}")
        if seg.ndim != 4 or seg.shape[1] != self.num_classes:
            raise ValueError(f"segmentation logits must be B×{self.num_classes}×H×W, got {tuple(seg.shape)}")
        if seg.shape[0] != target.shape[0] or seg.shape[2:] != target.shape[1:]:
            raise ValueError(f"segmentation logits {tuple(seg.shape)} do not match target {tuple(target.shape)}")
        n_cloth = self.num_classes - 1
        if classes is not None and tuple(classes.shape) != (seg.shape[0], n_cloth):
            raise ValueError(f"class logits must be B×{n_cloth}, got {tuple(classes.shape)}")
        if boxes is not None and boxes.numel() != seg.shape[0] * n_cloth * 4:
            raise ValueError(f"box logits must be B×{4 * n_cloth} (or B×{n_cloth}×4), got {tuple(boxes.shape)}")

    def _elementwise(self, pred, target):
        """Unreduced terms: weighted CE per pixel and its weights, BCE B×8, smooth L1 B×8×4 and its mask."""
        seg, classes, boxes = split_pred(pred)
        self._check(seg, classes, boxes, target)
        target = target.long()
        weight = self.ce_weight.to(seg.device)
        out = {"ce": F.cross_entropy(seg.float(), target, weight=weight, reduction="none"),  # = w[y]·nll
               "ce_w": weight[target]}
        if classes is None and boxes is None:
            return out
        gt_boxes, present = boxes_from_masks(target, self.num_classes)
        if classes is not None:
            out["bce"] = F.binary_cross_entropy_with_logits(classes.float(), present.float(), reduction="none")
        if boxes is not None:
            pred_boxes = torch.sigmoid(boxes.float().reshape(gt_boxes.shape))
            out["sl1"] = F.smooth_l1_loss(pred_boxes, gt_boxes, reduction="none")
            out["sl1_mask"] = present[..., None].expand_as(gt_boxes).float()
        return out

    def forward(self, pred, target: torch.Tensor) -> torch.Tensor:
        """Scalar compound loss of a batch (or per-image losses when ``reduction == 'none'``)."""
        if self.reduction == "none":
            return self.per_image(pred, target)
        if self.reduction != "mean":
            raise ValueError(f"reduction must be 'mean' or 'none', got {self.reduction!r}")
        e = self._elementwise(pred, target)
        terms = {"seg": e["ce"].sum() / e["ce_w"].sum()}
        total = self.seg_weight * terms["seg"]
        if "bce" in e:
            terms["cls"] = e["bce"].mean()
            total = total + self.class_weight * terms["cls"]
        if "sl1" in e:
            # Masked sum / count: a batch without clothing gives 0 · (graph) / 1 — a connected zero.
            terms["box"] = (e["sl1"] * e["sl1_mask"]).sum() / e["sl1_mask"].sum().clamp_min(1.0)
            total = total + self.box_weight * terms["box"]
        terms["total"] = total
        # Kept as detached tensors: converting to floats here would synchronise the device every batch.
        self._last = {k: v.detach() for k, v in terms.items()}
        return total

    def per_image(self, pred, target: torch.Tensor) -> torch.Tensor:
        """B tensor: each image's compound loss, every term reduced within that image alone.

        (Its mean differs slightly from the batch loss, whose CE is normalised by the batch's total weight.)
        """
        e = self._elementwise(pred, target)
        total = self.seg_weight * e["ce"].sum((1, 2)) / e["ce_w"].sum((1, 2))
        if "bce" in e:
            total = total + self.class_weight * e["bce"].mean(1)
        if "sl1" in e:
            box_sum, n_box = (e["sl1"] * e["sl1_mask"]).sum((1, 2)), e["sl1_mask"].sum((1, 2)).clamp_min(1.0)
            total = total + self.box_weight * box_sum / n_box
        return total

    @property
    def last_term_tensors(self) -> dict[str, torch.Tensor]:
        """Terms of the last batch loss as detached 0-d tensors on the loss's device (no synchronisation)."""
        return dict(self._last)

    @property
    def last_terms(self) -> dict[str, float]:
        """Terms of the last batch loss as floats (``seg``, ``cls``, ``box``, ``total``; absent branches omitted)."""
        return {k: float(v) for k, v in self._last.items()}

    # --- fastai conventions for get_preds -------------------------------------------------------
    def activation(self, pred):
        """Softmax over classes for the seg logits; sigmoid for the branch logits (same container type)."""
        if isinstance(pred, torch.Tensor):
            return F.softmax(pred.float(), dim=1)
        seg, classes, boxes = split_pred(pred)
        items = [F.softmax(seg.float(), dim=1)]
        items += [None if t is None else torch.sigmoid(t.float()) for t in (classes, boxes)]
        items = items[:len(pred)]
        return type(pred)(items) if type(pred) in (tuple, list) else type(pred)(*items)

    def decodes(self, x):
        """Predicted class index per pixel (argmax over the class dimension of the seg output)."""
        seg = x if isinstance(x, torch.Tensor) else split_pred(x)[0]
        return seg.argmax(dim=1)

    def extra_repr(self) -> str:
        w = self.ce_weight.tolist()
        return (f"seg_weight={self.seg_weight}, class_weight={self.class_weight}, box_weight={self.box_weight}, "
                f"bg_weight={w[0]}, fg_weight={w[1]}, num_classes={self.num_classes}")
