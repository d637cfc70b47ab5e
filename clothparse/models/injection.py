"""Prior knowledge of which clothing classes an image contains, and how it enters a prediction.

A *prior* is a float vector per image over the 8 clothing classes (``categories.CLOTHING`` order):
1 = present, 0 = absent, NaN = unknown. Two ways to use it:

- **soft** (network level, :func:`inject_prior`, called inside models with a ClassBranch): known entries
  replace the ClassBranch logits by ``+PRIOR_LOGIT`` / ``-PRIOR_LOGIT`` before they are injected into the
  segmentation (the paper's Table 5 and Figure 5: "probabilities for the 'dress' category were set to 0").
  ``PRIOR_LOGIT = 10``: sigmoid(±10) = 0.99995 / 0.00005, i.e. "certain", yet of the order of magnitude a
  confidently trained branch produces, so the layers after the injection see values like those they were
  trained on. ±inf would be exact but turns the convolutions after the concatenation into inf/NaN.
- **hard** (output level, :func:`apply_hard`): the logits of absent classes are pushed so low that argmax
  never picks them. Works for every model; "present" cannot be forced per pixel and is ignored.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from clothparse.categories import CLOTHING, NUM_CLOTHING

#: Logit magnitude that replaces a known ClassBranch output (+ present, − absent).
PRIOR_LOGIT: float = 10.0


def parse_prior(text: str) -> torch.Tensor:
    """``"skirt,-dress"`` → 8-vector: listed names 1, ``-name`` 0, the rest NaN (``+name`` also means present)."""
    prior = torch.full((NUM_CLOTHING,), float("nan"))
    for raw in str(text).split(","):
        token = raw.strip().lower()
        if not token:
            continue
        value, name = (0.0, token[1:].strip()) if token[0] == "-" else (1.0, token.lstrip("+").strip())
        if name not in CLOTHING:
            raise ValueError(f"unknown clothing class {name!r} in prior {text!r}; known: {', '.join(CLOTHING)}")
        i = CLOTHING.index(name)
        if not math.isnan(prior[i]) and prior[i] != value:
            raise ValueError(f"prior {text!r} says {name!r} is both present and absent")
        prior[i] = value
    return prior


def _check_prior(prior: torch.Tensor, batch: int, n: int) -> torch.Tensor:
    """``prior`` as B×n (an n-vector is broadcast), values 0/1/NaN, or a clear error."""
    if prior.ndim == 1:
        prior = prior.expand(batch, -1)
    if prior.ndim != 2 or prior.shape[1] != n or prior.shape[0] not in (1, batch):
        raise ValueError(f"prior must be B×{n} or a {n}-vector (B={batch}), got {tuple(prior.shape)}")
    if bool(((prior != 0) & (prior != 1) & ~torch.isnan(prior)).any()):
        raise ValueError("prior entries must be 1 (present), 0 (absent) or NaN (unknown)")
    return prior.expand(batch, -1)


def inject_prior(class_logits: torch.Tensor, prior: torch.Tensor | None, logit: float = PRIOR_LOGIT) -> torch.Tensor:
    """ClassBranch logits with the known prior entries replaced by ±``logit``; ``None``/all-NaN = unchanged."""
    if prior is None:
        return class_logits
    prior = _check_prior(torch.as_tensor(prior, device=class_logits.device).float(), *class_logits.shape)
    known = ~torch.isnan(prior)
    value = (torch.nan_to_num(prior) * 2 - 1) * logit
    return torch.where(known, value.to(class_logits.dtype), class_logits)


def forbidden_logit(dtype: torch.dtype) -> float:
    """The logit given to absent classes in hard mode: half the dtype's lowest value — below any real logit,
    finite so softmax / cross-entropy stay finite, and far enough from the limit that subtracting a row
    maximum (as softmax does) cannot overflow to -inf."""
    return torch.finfo(dtype).min / 2


def apply_hard(seg_logits: torch.Tensor, prior: torch.Tensor | Sequence | None) -> torch.Tensor:
    """B×(1+8)×H×W logits with every class the prior marks absent (0) forbidden; ``None``/all-NaN = unchanged.

    Returns a new tensor; background (channel 0) is never forbidden.
    """
    if prior is None:
        return seg_logits
    b, k = seg_logits.shape[:2]
    prior = _check_prior(torch.as_tensor(prior, device=seg_logits.device).float(), b, k - 1)
    absent = torch.cat([torch.zeros_like(prior[:, :1], dtype=torch.bool), prior == 0], dim=1)
    return seg_logits.masked_fill(absent.view(b, k, *([1] * (seg_logits.ndim - 2))), forbidden_logit(seg_logits.dtype))
