"""Ground-truth boxes and class presence derived from segmentation masks (the paper's BBBranch targets).

The paper infers one box per clothing category from the (augmented) ground-truth mask, on the GPU
(section 3.4). A box is the tight rectangle around *all* pixels of that class, so a category split into
several blobs (two shoes) gets one box spanning them — the paper allows at most one box per category.
"""
from __future__ import annotations

import torch

from clothparse.categories import NUM_CLASSES

__all__ = ["boxes_from_masks"]


def boxes_from_masks(masks: torch.Tensor, num_classes: int = NUM_CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image box and presence of every clothing class (1..num_classes-1) in a batch of masks.

    ``masks``: B×H×W integer tensor of class indices (0 = background), on any device.
    Returns ``(boxes, present)``: ``boxes`` B×(num_classes-1)×4 float32 with
    ``(x_min, y_min, x_max, y_max)`` relative to the image, where ``x_min = first column / W`` and
    ``x_max = (last column + 1) / W`` (likewise for y), so a box covering the whole image is
    ``(0, 0, 1, 1)``; ``present`` B×(num_classes-1) bool. Boxes of absent classes are all zero.
    Vectorised over images and pixels (one comparison per class); stays on the masks' device.
    Values outside ``0..num_classes-1`` are an error on CPU; on an accelerator they are not checked
    (that would cost a device synchronisation per batch) and simply match no class.
    """
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
    if masks.ndim != 3:
        raise ValueError(f"masks must be B×H×W, got shape {tuple(masks.shape)}")
    if masks.dtype.is_floating_point or masks.dtype == torch.bool or masks.dtype.is_complex:
        raise TypeError(f"masks must hold integer class indices, got {masks.dtype}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 (background + one class), got {num_classes}")
    if masks.device.type == "cpu" and masks.numel():
        lo, hi = int(masks.min()), int(masks.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"mask values must lie in 0..{num_classes - 1}, got {lo}..{hi}")

    b, h, w = masks.shape
    device = masks.device
    classes = torch.arange(1, num_classes, device=device, dtype=masks.dtype)
    onehot = masks[:, None] == classes[None, :, None, None]        # B×C×H×W bool
    rows = onehot.any(dim=3)                                          # B×C×H: class occurs in row y
    cols = onehot.any(dim=2)                                          # B×C×W: class occurs in column x
    present = rows.any(dim=2)                                         # B×C

    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    # First/last occupied index: min/max over the occupied positions (sentinels where unoccupied).
    y_min = torch.where(rows, ys, h).amin(dim=2)
    y_max = torch.where(rows, ys, -1).amax(dim=2) + 1
    x_min = torch.where(cols, xs, w).amin(dim=2)
    x_max = torch.where(cols, xs, -1).amax(dim=2) + 1

    boxes = torch.stack([x_min.float() / w, y_min.float() / h, x_max.float() / w, y_max.float() / h], dim=2)
    boxes = torch.where(present[..., None], boxes, torch.zeros((), device=device))
    return boxes.to(torch.float32), present
