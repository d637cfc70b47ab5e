"""The two side branches of the paper (section 3.2) and the expansion of their logits to image planes."""
from __future__ import annotations

import torch
from fastai.layers import AdaptiveConcatPool2d
from torch import nn

from clothparse.categories import NUM_CLOTHING


class ClassBranch(nn.Sequential):
    """Multilabel "which clothing classes are in the image" head on the deepest encoder features.

    concat(adaptive max, adaptive avg pooling) → Linear(2C, 512) → ReLU → BatchNorm1d → Dropout → Linear(512, 8):
    the paper's order, which is fastai's ``create_head(C, 8, lin_first=True)`` without its Dropout(0.25) right
    after the pooling (the paper does not list it). As in fastai, the first Linear has no bias (a BatchNorm
    follows); ``dropout=0.5`` is fastai's default at that position.
    """

    def __init__(self, in_channels: int, n_classes: int = NUM_CLOTHING, hidden: int = 512, dropout: float = 0.5):
        super().__init__(
            AdaptiveConcatPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * in_channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )


class BBBranch(nn.Sequential):
    """One box per clothing class: Flatten (no pooling) → Linear(C·h·w, hidden) → ReLU → Linear(hidden, 4·8).

    The paper says "two fully connected layers without any preceding pooling"; the ReLU is our choice (two
    linear layers with nothing between them are one low-rank linear map). ``hidden=256`` is our choice too
    (the paper is silent): 7.09 M parameters on ResNet34's 512×9×6 features of a 288×192 image. The flatten
    ties the branch to the input size it was built for. Output: B×32 logits, ``reshape(B, 8, 4)`` → per class
    (x_min, y_min, x_max, y_max) before the sigmoid.
    """

    def __init__(self, in_features: int, hidden: int = 256, n_classes: int = NUM_CLOTHING):
        super().__init__(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 4 * n_classes),
        )


def expand_planes(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The paper's "Expansion": B×K logits → B×K×H×W planes, each filled with its logit (a broadcast view)."""
    return logits[:, :, None, None].expand(-1, -1, *size)
