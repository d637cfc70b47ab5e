"""Parameter and FLOP counts per model (the cost columns beside Table 2)."""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from clothparse.models.base import check_input_size
from clothparse.models.factory import MODEL_NAMES, build_model, deployable

_CACHE: dict[tuple[str, str, tuple[int, int]], dict] = {}


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters())


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape, **kwargs) -> int:
    """``aten.convolution_backward``, grouped convolutions counted right.

    torch's own formula (torch 2.14) counts the weight gradient of a grouped convolution as if it were dense:
    ``groups`` times too many — for a depthwise convolution, as many times as it has channels — which makes the
    EfficientNet-Lite encoders' forward+backward look several times dearer than they are. Each of the two
    gradients costs what the forward costs (the weight's shape already carries the groups); for ``groups == 1``
    this gives torch's numbers exactly.
    """
    from torch.utils.flop_counter import conv_flop_count

    flop = 0
    if output_mask[0]:   # grad input: the transposed convolution of grad_out with the weight
        flop += conv_flop_count(grad_out_shape, w_shape, list(out_shape[0]), not transposed)
    if output_mask[1]:   # grad weight: one multiply-add per (output position, weight entry), as the forward
        flop += conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return flop


def _flop_counter(**kw) -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop},
                           **kw)


def count_flops(model: nn.Module, input_size: tuple[int, int] = (288, 192)) -> dict[str, float]:
    """FLOP per image (FLOP = 2 × multiply-accumulate, as ``torch.utils.flop_counter`` reports), batch 1, CPU.

    ``forward``: a training-mode forward; ``forward_backward``: plus the backward of the sum of every output
    (segmentation and branches — a training step; the loss's own arithmetic is negligible); ``inference``: an
    eval-mode forward of the deployed model (``branches`` without its branches, see ``deployable``).
    BatchNorm layers run in eval mode (one image has a single value per channel after global pooling);
    the counter does not count normalisation, so the numbers are those of training mode. The backward of a
    grouped (depthwise) convolution is counted by :func:`_conv_backward_flop`, not by torch's formula.
    """
    modes = {m: m.training for m in model.modules()}
    x = torch.randn(1, 3, *input_size)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    with _flop_counter() as counter:
        out = model(x)
        forward = counter.get_total_flops()
        sum(o.float().sum() for o in out if o is not None).backward()
    both = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    inference = forward
    deployed = deployable(model)
    if deployed is not model:
        with torch.no_grad(), _flop_counter() as counter:
            deployed.eval()(x)
        inference = counter.get_total_flops()
    for m, training in modes.items():
        m.train(training)
    return {"forward": forward, "forward_backward": both, "inference": inference}


def model_summary(names=None, input_size: tuple[int, int] = (288, 192), encoder_name: str = "resnet34") -> pd.DataFrame:
    """One row per model: ``params_m`` (millions), ``gflop_forward``, ``gflop_forward_backward``,
    ``gflop_inference`` (per image of ``input_size``, every model with the encoder ``encoder_name``; random init,
    CPU). Cached per name, encoder and size; at 288×192 each model takes a few seconds of one CPU core."""
    input_size = check_input_size(input_size)
    names = list(MODEL_NAMES if names is None else ([names] if isinstance(names, str) else names))
    rows = []
    for name in names:
        key = (name, encoder_name, input_size)
        if key not in _CACHE:
            model = build_model(name, encoder_name=encoder_name, encoder_weights=None, input_size=input_size)
            flops = count_flops(model, input_size)
            _CACHE[key] = {"params_m": count_params(model) / 1e6,
                           **{f"gflop_{k}": v / 1e9 for k, v in flops.items()}}
        rows.append({"model": name, **_CACHE[key]})
    return pd.DataFrame(rows).set_index("model")
