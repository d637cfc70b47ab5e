"""The paper's "rather conservative" batch augmentation — horizontal flip, small rotation, mild lighting — as one
fastai batch transform on plain tensors.

It draws and applies exactly what fastai's ``aug_transforms(do_flip=True, max_rotate=10, max_zoom=1,
max_lighting=0.2, max_warp=0, p_affine=0.75, p_lighting=0.75, pad_mode="zeros")`` does on a batch: per image a
flip (p 0.5) and a rotation (p 0.75) composed into one affine grid (``align_corners=True``, zero padding;
bilinear for the image, nearest for the mask, so image and mask stay aligned), then a brightness shift and a
contrast scale in logit space (each p 0.75). ``tests/test_augment.py`` checks image and mask against fastai's
transforms on the same draws. Why not fastai's own transforms: they build the grid twice (image, then mask)
and route every small tensor operation through fastai's typed-tensor dispatch, which on a CPU costs about as
much as the sampling itself; here the grid is made once per batch and the arithmetic runs on plain tensors
(``bench/run.py --only train_epoch`` measures the whole epoch).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from fastai.vision.augment import RandTransform
from fastai.vision.core import TensorImage, TensorMask

__all__ = ["FlipRotateLighting", "augment_draws", "affine_matrices", "augment_batch", "lighting",
           "fastai_transforms"]

#: the paper's augmentation (section 3.4), in ``aug_transforms``' terms
MAX_ROTATE, MAX_LIGHTING, P_AFFINE, P_LIGHTING, P_FLIP = 10.0, 0.2, 0.75, 0.75, 0.5


def augment_draws(batch: int, device=None, *, max_rotate: float = MAX_ROTATE, max_lighting: float = MAX_LIGHTING,
                  p_affine: float = P_AFFINE, p_lighting: float = P_LIGHTING,
                  p_flip: float = P_FLIP) -> dict[str, torch.Tensor]:
    """Per image of a batch: ``flip`` (bool), ``degrees`` (0: none), ``brightness`` (the logit-shift's target
    value, 0.5: none) and ``contrast`` (the logit scale, 1: none), each drawn as ``aug_transforms`` draws it."""
    def maybe(p: float, value: torch.Tensor, neutral: float) -> torch.Tensor:
        return torch.where(torch.rand(batch, device=device) < p, value, torch.full_like(value, neutral))

    lo = 0.5 * (1 - max_lighting)
    log_contrast = -math.log(1 - max_lighting)
    return {"flip": torch.rand(batch, device=device) < p_flip,
            "degrees": maybe(p_affine, torch.empty(batch, device=device).uniform_(-max_rotate, max_rotate), 0.0),
            "brightness": maybe(p_lighting, torch.empty(batch, device=device).uniform_(lo, 1 - lo), 0.5),
            "contrast": maybe(p_lighting, torch.empty(batch, device=device).uniform_(
                -log_contrast, log_contrast).exp(), 1.0)}


def affine_matrices(draws: dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
    """B×2×3 matrices for ``F.affine_grid``: fastai's flip matrix times its rotation matrix, the off-diagonal
    terms corrected for the aspect ratio as fastai does (a rotation of the picture, not of the unit square)."""
    theta = draws["degrees"].float() * (math.pi / 180)
    flip = torch.where(draws["flip"].to(theta.device), -1.0, 1.0)
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    return torch.stack([torch.stack([flip * cos, flip * sin * (height / width), zero], 1),
                        torch.stack([-sin * (width / height), cos, zero], 1)], 1)


def _logit(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def lighting(x: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
    """Brightness then contrast in logit space, as fastai's ``Brightness`` and ``Contrast`` composed."""
    shift = _logit(draws["brightness"].to(x.device, x.dtype))[:, None, None, None]
    scale = draws["contrast"].to(x.device, x.dtype)[:, None, None, None]
    return torch.sigmoid((_logit(x) + shift) * scale)


def _sample(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=True)


def augment_batch(image: torch.Tensor, mask: torch.Tensor, draws: dict[str, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` (B×3×H×W float in 0..1) and ``mask`` (B×H×W integer) augmented with ``draws`` (default: new
    :func:`augment_draws`); plain tensors in, plain tensors out."""
    b, _, h, w = image.shape
    draws = draws or augment_draws(b, image.device)
    grid = F.affine_grid(affine_matrices(draws, h, w).to(image.device, image.dtype), [b, 1, h, w],
                         align_corners=True)
    image = lighting(_sample(image, grid, "bilinear"), draws)
    mask = _sample(mask[:, None].to(image.dtype), grid, "nearest")[:, 0].to(mask.dtype)
    return image, mask


class FlipRotateLighting(RandTransform):
    """:func:`augment_batch` as a fastai batch transform (``after_batch``, training split only): one set of draws
    and one sampling grid per batch, shared by its image and its mask."""

    order = 30  # where fastai's affine transforms sit: after IntToFloatTensor (10), before Normalize (99)
    split_idx = 0

    def before_call(self, b, split_idx: int):
        self.do = True  # the draws decide per image; Transform's split_idx keeps validation batches untouched
        image = b[0] if isinstance(b, tuple) else b
        n, _, h, w = image.shape
        self.draws = augment_draws(n, image.device)
        mats = affine_matrices(self.draws, h, w).to(image.device, torch.float32)
        self.grid = F.affine_grid(mats, [n, 1, h, w], align_corners=True)

    def encodes(self, x: TensorImage):
        plain = x.as_subclass(torch.Tensor)
        return TensorImage(lighting(_sample(plain, self.grid.to(plain.dtype), "bilinear"), self.draws))

    def encodes(self, x: TensorMask):  # noqa: F811 — fastai dispatches encodes on the argument's type
        plain = x.as_subclass(torch.Tensor)
        return TensorMask(_sample(plain[:, None].float(), self.grid, "nearest")[:, 0].to(plain.dtype))


def fastai_transforms() -> list:
    """The same augmentation as fastai's own transforms (``aug_transforms``), the reference this module is
    tested against and the bench's comparison."""
    from fastai.vision.augment import aug_transforms

    return aug_transforms(do_flip=True, flip_vert=False, max_rotate=MAX_ROTATE, max_zoom=1.0,
                          max_lighting=MAX_LIGHTING, max_warp=0.0, p_affine=P_AFFINE, p_lighting=P_LIGHTING,
                          pad_mode="zeros")
