"""The paper's plain U-Net: fastai's ``DynamicUnet`` on a ResNet34 body, nearest-neighbour upsampling.

Built from fastai's own parts (``UnetBlock``, ``ConvLayer``, ``ResBlock``, ``BatchNorm``) in DynamicUnet's
order and with its settings (``blur=False, self_attention=False, y_range=None, last_cross=True,
bottle=False, norm_type=None``), with two changes:

- every ``PixelShuffle_ICNR(ni, nf)`` (the four decoder blocks' and the last one) becomes
  :class:`NearestUpsample`: the same 1×1 conv + ReLU but ``ni → nf`` instead of ``ni → 4·nf``, then ×2
  nearest-neighbour upsampling (the paper's "simple nearest neighbor technique"). With ResNet34 at 288×192
  this gives 40.09 M parameters and 152.86 GFLOP per image forward+backward (fastai's PixelShuffle version:
  41.22 M, 158.98 GFLOP);
- skip features are passed explicitly instead of through forward hooks, so the side branches can tap the
  deepest features and the model deep-copies, pickles and saves (safetensors) like any module. The tests
  check that the output equals fastai's hook-based ``DynamicUnet`` with the same upsampling and weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from fastai.layers import BatchNorm, ConvLayer, ResBlock
from fastai.torch_core import apply_init
from fastai.vision.models.unet import UnetBlock
from fastai.vision.models.unet import _get_sz_change_idxs as size_change_idxs
from torch import nn

from clothparse.categories import NUM_CLASSES
from clothparse.models.base import SegOutput, check_input_size, plain_tensor
from clothparse.models.encoders import unet_body


class NearestUpsample(nn.Sequential):
    """1×1 conv + ReLU (``ni → nf``) then ×``scale`` nearest-neighbour upsampling.

    Initialised like ``PixelShuffle_ICNR`` (kaiming-normal weight, zero bias), whose ICNR init makes the pixel
    shuffle *start* as exactly this nearest upsampling of a 1×1 conv; here it stays so.
    """

    def __init__(self, ni: int, nf: int | None = None, scale: int = 2):
        nf = ni if nf is None else nf
        conv = ConvLayer(ni, nf, ks=1, norm_type=None, bias_std=0)
        nn.init.kaiming_normal_(conv[0].weight)
        super().__init__(conv, nn.Upsample(scale_factor=scale, mode="nearest"))


class NearestUnetBlock(UnetBlock):
    """fastai's ``UnetBlock`` with :class:`NearestUpsample` and the skip features given as an argument."""

    def __init__(self, up_in_c: int, x_in_c: int, final_div: bool = True):
        super().__init__(up_in_c, x_in_c, hook=None, final_div=final_div, blur=False, self_attention=False,
                         norm_type=None)
        self.shuf = NearestUpsample(up_in_c, up_in_c // 2)  # replaces PixelShuffle_ICNR in place (same key)

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:  # UnetBlock.forward, hook → arg
        up_out = self.shuf(up_in)
        if skip.shape[-2:] != up_out.shape[-2:]:
            up_out = F.interpolate(up_out, skip.shape[-2:], mode="nearest")
        cat_x = self.relu(torch.cat([up_out, self.bn(skip)], dim=1))
        return self.conv2(self.conv1(cat_x))


@torch.no_grad()
def _stage_shapes(encoder: nn.Sequential, input_size: tuple[int, int]) -> list[torch.Size]:
    """Output shape of each child of ``encoder`` for one image (fastai's ``model_sizes``, mode restored)."""
    was_training = encoder.training
    encoder.eval()
    first = next(encoder.parameters())
    x = torch.zeros(1, _in_channels(encoder), *input_size, dtype=first.dtype, device=first.device)
    shapes = []
    for layer in encoder:
        x = layer(x)
        shapes.append(x.shape)
    encoder.train(was_training)
    return shapes


def _in_channels(encoder: nn.Module) -> int:
    return next(m for m in encoder.modules() if isinstance(m, nn.Conv2d)).in_channels


class FastaiUnet(nn.Module):
    """The paper's plain U-Net (Table 2 "Plain U-Net"); ``forward(x, prior=None) -> SegOutput(seg, None, None)``.

    ``extra_channels`` widens the tail (ResBlock and final 1×1 conv) for planes concatenated at the merge
    with the input image (used by :class:`~clothparse.models.extended_unet.ExtendedUnet`).
    """

    def __init__(self, encoder_name: str = "resnet34", encoder_weights=None, num_classes: int = NUM_CLASSES,
                 input_size: tuple[int, int] = (288, 192), extra_channels: int = 0):
        super().__init__()
        self.input_size = check_input_size(input_size)
        encoder = unet_body(encoder_name, encoder_weights)
        self.encoder_name = encoder_name
        shapes = _stage_shapes(encoder, self.input_size)
        #: encoder children whose outputs are the skip connections (ascending), as DynamicUnet picks them
        self.skip_idxs = [int(i) for i in size_change_idxs(shapes)]
        self.deepest_shape = tuple(shapes[-1][1:])  # C×h×w of the encoder's output
        ni = shapes[-1][1]
        middle_conv = nn.Sequential(ConvLayer(ni, ni * 2, norm_type=None), ConvLayer(ni * 2, ni, norm_type=None))
        blocks = []
        for i, idx in enumerate(reversed(self.skip_idxs)):
            not_final = i != len(self.skip_idxs) - 1
            block = NearestUnetBlock(ni, shapes[idx][1], final_div=not_final)
            ni = ni // 2 + shapes[idx][1]
            ni = ni if not_final else ni // 2
            blocks.append(block)
        self.encoder = encoder
        self.middle = nn.Sequential(BatchNorm(shapes[-1][1]), nn.ReLU(), middle_conv)
        self.blocks = nn.ModuleList(blocks)
        # DynamicUnet adds the last upsampling only when the first stage is not already full size
        self.upsample = NearestUpsample(ni) if tuple(shapes[0][-2:]) != self.input_size else nn.Identity()
        n_merge = ni + _in_channels(encoder) + extra_channels
        self.tail = ResBlock(1, n_merge, n_merge, norm_type=None)
        self.head = ConvLayer(n_merge, num_classes, ks=1, act_cls=None, norm_type=None)
        apply_init(nn.Sequential(middle_conv, self.tail), nn.init.kaiming_normal_)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoder's output (deepest features) and the skip features, shallow to deep."""
        skips = []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in self.skip_idxs:
                skips.append(x)
        return x, skips

    def decode(self, deepest: torch.Tensor, skips: list[torch.Tensor], size) -> torch.Tensor:
        """Decoder features at the input resolution ``size``, before the merge with the input."""
        y = self.middle(deepest)
        for block, skip in zip(self.blocks, reversed(skips)):
            y = block(y, skip)
        y = self.upsample(y)
        if y.shape[-2:] != size:  # DynamicUnet's ResizeToOrig
            y = F.interpolate(y, size, mode="nearest")
        return y

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> SegOutput:
        """``prior`` is accepted for a uniform interface and ignored: this model has no ClassBranch."""
        x = plain_tensor(x)
        deepest, skips = self.encode(x)
        y = self.decode(deepest, skips, x.shape[-2:])
        return SegOutput(self.head(self.tail(torch.cat([y, x], dim=1))))

    @classmethod
    def _sharing(cls, other: FastaiUnet) -> FastaiUnet:
        """A plain U-Net whose modules *are* ``other``'s trunk (no copy, same parameters)."""
        plain = cls.__new__(cls)
        nn.Module.__init__(plain)
        plain.input_size, plain.skip_idxs, plain.deepest_shape = other.input_size, other.skip_idxs, other.deepest_shape
        for name in ("encoder", "middle", "blocks", "upsample", "tail", "head"):
            setattr(plain, name, getattr(other, name))
        return plain.train(other.training)
