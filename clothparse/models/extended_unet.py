"""The paper's "Our model" and its two ablations: the U-Net with ClassBranch and/or BBBranch.

``injection`` says how the branches feed the segmentation:

- ``"concat"`` ("Our model"): the branch logits are expanded to full-resolution planes (8 + 32) and
  concatenated with the decoder features and the input image where DynamicUnet's tail merges its input;
  the tail's ResBlock and final 1×1 conv then see them, so the segmentation loss alone trains both branches;
- ``"multiply"`` ("ClassBranch only"): the clothing-class probabilities multiply the segmentation — in logit
  space ``seg[:, c] += logsigmoid(class_logit[c-1])`` for every clothing class c (background untouched), i.e.
  p(pixel is c) ∝ p_seg(c) · p_image(c). Multiplying probabilities, not raw logits, because a logit times a
  probability has no meaning (a negative logit times a small probability *grows*); the log-space sum is
  stable in fp16 and sends the segmentation gradient into the branch;
- ``"none"`` ("Branches"): the branches are trained by their own losses only; :meth:`ExtendedUnet.drop_branches`
  returns the plain U-Net underneath (same segmentation output, plain U-Net cost).

``prior`` (B×8, 1 present / 0 absent / NaN unknown) replaces the known ClassBranch logits by
±``prior_logit`` before injection (see :mod:`clothparse.models.injection`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clothparse.categories import NUM_CLASSES
from clothparse.models.base import SegOutput, plain_tensor
from clothparse.models.heads import BBBranch, ClassBranch, expand_planes
from clothparse.models.injection import PRIOR_LOGIT, inject_prior
from clothparse.models.unet import FastaiUnet

INJECTIONS: tuple[str, ...] = ("concat", "multiply", "none")


class ExtendedUnet(FastaiUnet):
    """:class:`FastaiUnet` + ClassBranch (+ BBBranch) on the encoder's output (ResNet ``layer4``, 512×H/32×W/32)."""

    def __init__(self, encoder_name: str = "resnet34", encoder_weights=None, num_classes: int = NUM_CLASSES,
                 input_size: tuple[int, int] = (288, 192), injection: str = "concat", box_branch: bool = True,
                 class_hidden: int = 512, class_dropout: float = 0.5, box_hidden: int = 256,
                 prior_logit: float = PRIOR_LOGIT):
        if injection not in INJECTIONS:
            raise ValueError(f"injection must be one of {INJECTIONS}, got {injection!r}")
        if injection == "multiply" and box_branch:
            raise ValueError("injection='multiply' gates the segmentation with the ClassBranch only: "
                             "use box_branch=False")
        n_clothing = num_classes - 1  # class 0 is background
        extra = (n_clothing + (4 * n_clothing if box_branch else 0)) if injection == "concat" else 0
        super().__init__(encoder_name, encoder_weights, num_classes, input_size, extra_channels=extra)
        self.injection, self.prior_logit = injection, float(prior_logit)
        c = self.deepest_shape[0]
        self.class_branch = ClassBranch(c, n_clothing, hidden=class_hidden, dropout=class_dropout)
        self.box_branch = BBBranch(math.prod(self.deepest_shape), box_hidden, n_clothing) if box_branch else None

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> SegOutput:
        x = plain_tensor(x)
        if self.box_branch is not None and tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"this model was built for {self.input_size[0]}×{self.input_size[1]} images (its BBBranch "
                             f"flattens the {'×'.join(map(str, self.deepest_shape))} deepest features); got "
                             f"{x.shape[-2]}×{x.shape[-1]} — resize the images or build it with input_size="
                             f"{tuple(x.shape[-2:])}")
        deepest, skips = self.encode(x)
        classes = inject_prior(self.class_branch(deepest), prior, self.prior_logit)
        boxes = self.box_branch(deepest) if self.box_branch is not None else None
        y = self.decode(deepest, skips, x.shape[-2:])
        planes = [y, x]
        if self.injection == "concat":
            size = tuple(x.shape[-2:])
            planes += [expand_planes(t, size) for t in (classes, boxes) if t is not None]
        seg = self.head(self.tail(torch.cat(planes, dim=1)))
        if self.injection == "multiply":
            seg = torch.cat([seg[:, :1], seg[:, 1:] + F.logsigmoid(classes)[:, :, None, None].to(seg.dtype)], dim=1)
        return SegOutput(seg, classes, boxes)

    def drop_branches(self) -> FastaiUnet:
        """The plain U-Net inside a ``"none"``-injection model, sharing its parameters: same segmentation
        output, plain U-Net cost. Its ``state_dict`` loads into ``build_model("unet")``."""
        if self.injection != "none":
            raise ValueError(f"the branches feed the segmentation (injection={self.injection!r}); only a "
                             "'branches' model (injection='none') can drop them")
        return FastaiUnet._sharing(self)

