"""What every model returns, and the small helpers the model modules share."""
from __future__ import annotations

import sys
from typing import NamedTuple

import torch


class SegOutput(NamedTuple):
    """Output of every model of :func:`clothparse.models.build_model`.

    ``seg``: B×9×H×W segmentation logits; ``classes``: B×8 ClassBranch logits (clothing classes in
    ``categories.CLOTHING`` order) or ``None``; ``boxes``: B×32 BBBranch logits or ``None`` — reshape to B×8×4,
    sigmoid → (x_min, y_min, x_max, y_max) of each clothing class relative to the image.
    A tuple, not a dict, because fastai's mixed precision and ``get_preds`` handle tuples.
    """

    seg: torch.Tensor
    classes: torch.Tensor | None = None
    boxes: torch.Tensor | None = None


def check_input_size(input_size) -> tuple[int, int]:
    """``input_size`` as an (H, W) tuple of positive ints, or a clear error."""
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (height, width), got {input_size!r}") from None
    if h <= 0 or w <= 0 or (h, w) != tuple(input_size):
        raise ValueError(f"input_size must be two positive integers (height, width), got {input_size!r}")
    return h, w


def plain_tensor(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a plain ``torch.Tensor``: fastai's ``TensorImage`` would otherwise propagate through every layer
    (per-op dispatch overhead) into the outputs, where it meets the loss's ``TensorMask``."""
    # only fastai's subclasses are unwrapped: torch.export / FakeTensor inputs must pass through untouched. A
    # TensorBase exists only once fastai is imported, so the check needs no import (nor fastai installed).
    fastai_tensors = sys.modules.get("fastai.torch_core")
    return x.as_subclass(torch.Tensor) if fastai_tensors and isinstance(x, fastai_tensors.TensorBase) else x
