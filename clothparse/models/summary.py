"""Parameter and FLOP counts per model (the cost columns beside Table 2)."""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_CACHE: dict[tuple[str, tuple[int, int]], dict] = {}


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: tuple[int, int] = (288, 192)) -> dict[str, float]:
    """FLOP per image (FLOP = 2 × multiply-accumulate, as ``torch.utils.flop_counter`` reports), batch 1, CPU.

    ``forward``: a training-mode forward; ``forward_backward``: plus the backward of the sum of every output
    (segmentation and branches — a training step; the loss's own arithmetic is negligible); ``inference``: an
    eval-mode forward of the deployed model (``branches`` without its branches, see ``deployable``).
    BatchNorm layers run in eval mode (one image has a single value per channel after global pooling);
    the counter does not count normalisation, so the numbers are those of training mode.
    """
    from .factory import deployable

    modes = {m: m.training for m in model.modules()}
    x = torch.randn(1, 3, *input_size)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        forward = counter.get_total_flops()
        sum(o.float().sum() for o in out if o is not None).backward()
    both = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    inference = forward
    deployed = deployable(model)
    if deployed is not model:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            deployed.eval()(x)
        inference = counter.get_total_flops()
    for m, training in modes.items():
        m.train(training)
    return {"forward": forward, "forward_backward": both, "inference": inference}


def model_summary(names=None, input_size: tuple[int, int] = (288, 192)) -> pd.DataFrame:
    """One row per model: ``params_m`` (millions), ``gflop_forward``, ``gflop_forward_backward``,
    ``gflop_inference`` (per image of ``input_size``; random init, CPU). Cached per name and size; at
    288×192 each model takes a few seconds of one CPU core."""
    from .base import check_input_size
    from .factory import MODEL_NAMES, build_model

    input_size = check_input_size(input_size)
    names = list(MODEL_NAMES if names is None else ([names] if isinstance(names, str) else names))
    rows = []
    for name in names:
        key = (name, input_size)
        if key not in _CACHE:
            model = build_model(name, encoder_weights=None, input_size=input_size)
            flops = count_flops(model, input_size)
            _CACHE[key] = {"params_m": count_params(model) / 1e6,
                           **{f"gflop_{k}": v / 1e9 for k, v in flops.items()}}
        rows.append({"model": name, **_CACHE[key]})
    return pd.DataFrame(rows).set_index("model")
