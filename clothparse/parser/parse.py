"""Use a trained model: parse photos into the 9 classes, box and colour-tag every garment, inject a prior.

``parse(images, run=...)`` (or a reusable :class:`Parser`; ``Parser.from_pretrained(DIR)`` for a packaged model,
:mod:`clothparse.parser.package`, or an ``.onnx`` export) returns one :class:`ParseResult` per image:

- ``mask``: H×W uint8 (0..8) at the image's **original** resolution (after EXIF orientation). The network
  sees the image resized to the run's input size (as the store resized training images: PIL ``BOX`` when
  shrinking, else ``BILINEAR``, aspect ratio not kept); its 9 logit planes are resized back **bilinearly** and
  the mask is their argmax — smoother outlines than resizing the class map. For a huge image the bilinear
  upsampling runs in bands of rows (:func:`upsample_argmax`): the same numbers, but only ``max_elements``
  floats at a time instead of 9 full-size float planes;
- ``probabilities``: per clothing class, the image-level probability that it is present — the ClassBranch's
  sigmoid where the (deployed) model has one (``probability_source="classbranch"``), else the largest
  per-pixel softmax probability of that class (``"pixels"``: present if any pixel is confidently that class);
  ``fractions``: the share of the mask's pixels per class (all 9);
- ``classes``: the clothing classes *in the mask* covering at least ``min_area`` of the image — the mask is
  the output, and boxes and colours describe it. Where the ClassBranch says otherwise (sigmoid > 0.5 vs. in
  the mask), the class is listed in ``disagreements``;
- ``boxes``: per present class, (x_min, y_min, x_max, y_max) in original pixels, max exclusive;
- ``colours``: per present class, its dominant colours (:mod:`clothparse.parser.colours`).

**One garment at a time** (:mod:`clothparse.parser.garments`): ``mask`` stays the class-id array and is callable —
``result.mask("skirt")`` is the skirt's H×W boolean mask (a name that is no class is a ``ValueError`` listing
the classes); ``result.cutout("skirt")`` its RGBA cut-out, cropped to its box, transparent elsewhere, always
at the **original** resolution (for a reduced image, the input is read again: ``original`` keeps it);
``result.garments()`` each garment's box, pixel count and mask as RLE in the Kaggle convention
(:mod:`clothparse.rle`), as the JSON writes them; ``result.only("pants,skirt")`` the result limited to those
classes (the others become background).

A **prior** ("skirt,-dress", an 8-vector 1/0/NaN, or one per image) enters the ClassBranch (soft, see
:mod:`clothparse.models.injection`); ``hard=True`` also forbids the absent classes in the output (any model).

**Inputs**: paths, PIL images or arrays (H×W gray, H×W×3 RGB, H×W×4 RGBA; uint8, uint16 scaled by 1/257,
float in 0..1). EXIF orientation is applied; grayscale, palette, CMYK become RGB; transparency is composited
on white; 16-bit images are scaled to 8 bit. Images larger than ``work_max_side`` (2048 px) are reduced
first (JPEGs decode directly at a reduced scale): the network input is far smaller anyway, colours are
computed on that copy (pixel counts for ``too_small`` at the original resolution), and the mask (and the
cut-outs) are still at the original size. **Unreadable or missing files**: :func:`parse` raises
:class:`ImageLoadError` naming the file; :meth:`Parser.iter_parse` with ``errors="report"`` yields a
:class:`ParseFailure` in its place and goes on (the command line uses that: reported, skipped, exit code 1).
A batch size below 1 is a ``ValueError`` (:func:`check_batch_size`).

Reading the inputs lives in :mod:`clothparse.images`; the files and table made of results in
:mod:`clothparse.parser.outputs`, their figures in :mod:`clothparse.parser.figures`, and ``clothparse parse``
(files in, an output folder out) is :func:`clothparse.parser.files.parse_files`.
"""
from __future__ import annotations

import math
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clothparse import rle
from clothparse.categories import CLASSES, CLOTHING, NUM_CLASSES, NUM_CLOTHING, OVERLAY_ALPHA, overlay
from clothparse.datasets.store import resize_image
from clothparse.devices import resolve_device
from clothparse.images import (
    IMAGE_EXTENSIONS,
    WORK_MAX_SIDE,
    ImageLoadError,
    LoadedImage,
    expand_inputs,
    load_batches,
    load_image,
    normalise_batch,
    stats_of,
    to_rgb_array,
)
from clothparse.masks import class_counts, tight_boxes
from clothparse.models.injection import apply_hard, parse_prior
from clothparse.parser.backends import MirrorAveraged, Network
from clothparse.parser.colours import GarmentColours, garment_colours
from clothparse.parser.garments import ClassMask, class_index, cutout, parse_classes
from clothparse.parser.package import load_network

__all__ = ["IMAGE_EXTENSIONS", "WORK_MAX_SIDE", "ImageLoadError", "LoadedImage", "ParseResult", "ParseFailure",
           "Parser", "parse", "load_image", "to_rgb_array", "upsample_argmax", "expand_inputs", "overlay", "ClassMask",
           "class_counts", "check_batch_size", "NonFiniteOutputError"]


# --- results ----------------------------------------------------------------------------------
@dataclass
class ParseResult:
    """What :func:`parse` says about one image (see the module docstring)."""

    source: str
    size: tuple[int, int]
    #: H×W class ids at the original resolution; ``mask("skirt")`` is one garment's boolean mask
    mask: ClassMask = field(repr=False)
    classes: tuple[str, ...]
    probabilities: dict[str, float]
    probability_source: str
    fractions: dict[str, float]
    boxes: dict[str, tuple[int, int, int, int]]
    colours: dict[str, GarmentColours]
    disagreements: tuple[str, ...] = ()
    prior: list[float | None] | None = None
    hard: bool = False
    #: the RGB image the colours were computed on (the input, reduced to ``work_max_side``), for overlays
    image: np.ndarray | None = field(default=None, repr=False)
    ok: bool = True
    #: the input itself (path, PIL image or array) when ``image`` is a reduced copy: cut-outs read their
    #: pixels from it at the original resolution
    original: object = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.mask, ClassMask):
            self.mask = ClassMask(self.mask)

    @property
    def main_colours(self) -> dict[str, str | None]:
        """Per present class the name of its largest colour (``None``: too small)."""
        return {c: (self.colours[c].main.name if c in self.colours and self.colours[c].main else None)
                for c in self.classes}

    def overlay(self, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
        """The image with the mask's garments tinted in their palette colour (at ``image``'s resolution):
        :func:`clothparse.categories.overlay`, as in the book's figures."""
        if self.image is None:
            raise ValueError(f"{self.source}: the result keeps no image")
        return overlay(self.image, self.mask, alpha)

    def full_image(self) -> np.ndarray:
        """The RGB image at the mask's (the original) resolution: ``image`` when it is not reduced, else the
        input read again without reducing it."""
        if self.image is not None and self.image.shape[:2] == tuple(self.size):
            return self.image
        if self.original is None:
            raise ValueError(f"{self.source}: the result keeps only a reduced copy of the image, not its "
                             f"{self.size[0]}×{self.size[1]} original")
        full = load_image(self.original, max(self.size), source=self.source).image
        if full.shape[:2] != tuple(self.size):
            raise ValueError(f"{self.source}: the image is {full.shape[0]}×{full.shape[1]} now, "
                             f"{self.size[0]}×{self.size[1]} when parsed")
        return full

    def cutouts(self, classes: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Per garment found (or per name in ``classes``) its RGBA cut-out at the original resolution, cropped
        to its box (:func:`clothparse.parser.garments.cutout`); the original image is read once for all of them."""
        names = list(self.classes if classes is None else classes)
        for name in names:
            class_index(name)
            if name not in self.boxes:
                raise ValueError(f"{self.source}: no {name} found (found: {', '.join(self.classes) or 'none'})")
        if not names:
            return {}
        full = self.full_image()
        return {name: cutout(full, self.mask(name), self.boxes[name]) for name in names}

    def cutout(self, name: str) -> np.ndarray:
        """The RGBA cut-out of garment ``name``: the photo at its original resolution cropped to the
        garment's box, transparent outside the garment."""
        return self.cutouts([name])[name]

    def only(self, classes: Iterable[str] | str | None) -> ParseResult:
        """The result limited to ``classes`` ("pants,skirt" or names): the other garments become background
        in the mask, and classes, boxes, colours, probabilities and fractions are those of the rest."""
        keep = parse_classes(classes)
        if keep is None:
            return self
        ids = [CLASSES.index(c) for c in keep]
        mask = np.where(np.isin(self.mask, ids), self.mask, 0).astype(np.uint8)
        fractions = {c: (v if c in keep else 0.0) for c, v in self.fractions.items() if c != "background"}
        fractions = {"background": 1.0 - sum(fractions.values()), **fractions}
        return replace(self, mask=ClassMask(mask), classes=tuple(c for c in self.classes if c in keep),
                       probabilities={c: p for c, p in self.probabilities.items() if c in keep},
                       fractions=fractions, boxes={c: b for c, b in self.boxes.items() if c in keep},
                       colours={c: v for c, v in self.colours.items() if c in keep},
                       disagreements=tuple(c for c in self.disagreements if c in keep))

    def garments(self) -> dict[str, dict]:
        """Per garment found: its box, its pixel count and its mask as a Kaggle-convention RLE string
        (:func:`clothparse.rle.encode`; ``rle.decode(text, *size)`` gives ``mask(name)`` back)."""
        ids = {name: CLASSES.index(name) for name in self.classes}
        runs = rle.encode_classes(np.asarray(self.mask), ids.values())  # one pass over the mask for all
        return {name: {"box": list(self.boxes[name]), "pixels": runs[i][1], "rle": runs[i][0]}
                for name, i in ids.items()}

    def to_dict(self, garments: bool = True) -> dict:
        """JSON-ready (no arrays); ``garments``: with :meth:`garments` (each garment's box, pixels, RLE)."""
        out = {"source": self.source, "height": self.size[0], "width": self.size[1], "classes": list(self.classes),
               "probabilities": {k: round(v, 5) for k, v in self.probabilities.items()},
               "probability_source": self.probability_source,
               "fractions": {k: round(v, 6) for k, v in self.fractions.items()},
               "boxes": {k: list(v) for k, v in self.boxes.items()},
               "colours": {k: v.to_dict() for k, v in self.colours.items()},
               "disagreements": list(self.disagreements), "prior": self.prior, "hard": self.hard}
        if garments:
            out["garments"] = self.garments()
        return out


@dataclass
class ParseFailure:
    """An input that could not be parsed (``Parser.iter_parse(..., errors="report")``)."""

    source: str
    error: str
    ok: bool = False


# --- resizing ---------------------------------------------------------------------------------
def _argmax0(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(0)`` as uint8 for C×H×W, one plane at a time: several times faster than torch's strided
    reduction over the first dimension on a CPU; ties go to the first class, as ``argmax``."""
    best, idx = x[0].clone(), torch.zeros(x.shape[1:], dtype=torch.uint8, device=x.device)
    for c in range(1, x.shape[0]):
        better = x[c] > best
        best = torch.where(better, x[c], best)
        idx[better] = c
    return idx


def _source_rows(n_in: int, n_out: int, dtype) -> np.ndarray:
    """The first source index of each output index for ``align_corners=False`` bilinear resizing, computed in
    ``dtype`` the way PyTorch's CPU kernel computes it (scale = in/out, clamped at 0)."""
    scale = dtype(n_in) / dtype(n_out)
    src = np.maximum(scale * (np.arange(n_out, dtype=dtype) + dtype(0.5)) - dtype(0.5), dtype(0))
    return np.minimum(np.floor(src).astype(np.int64), n_in - 1)


def _source_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first index, second index, weight of the second) per output index, in float32."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum(scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, np.minimum(i0 + 1, n_in - 1), lam


def _top_two(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per position of C×… logits: the winning class (uint8; ties go to the first, as ``argmax``), its logit and
    the second largest — one class plane at a time, several times faster than an argmax or a partition over the
    first axis."""
    best, second = x[0].copy(), np.full_like(x[0], -np.inf)
    winner = np.zeros(x.shape[1:], np.uint8)
    for c in range(1, x.shape[0]):
        better = x[c] > best
        second = np.where(better, best, np.maximum(second, x[c]))
        best = np.where(better, x[c], best)
        winner[better] = c
    return winner, best, second


def _settled_cells(x: np.ndarray) -> np.ndarray:
    """h×w uint8: per source cell (i, j) — the square spanned by rows i, i+1 and columns j, j+1 (clamped) — the
    class that wins at all four corners by a clear margin, else 255. Bilinear interpolation is a convex combination
    of the four corners, so every output pixel inside such a cell has that class as its argmax: each corner's
    winner beats every other class, hence so does any weighted mean of them. The margin (1e-4 of the largest
    logit) is far above float32 rounding, so computing the mean in another order cannot flip the winner."""
    winner, best, second = _top_two(x)
    eps = 1e-4 * max(1.0, float(np.abs(x).max()))
    won = np.where(best - second > eps, winner, 255).astype(np.uint8)
    h, w = won.shape
    down, right = np.minimum(np.arange(h) + 1, h - 1), np.minimum(np.arange(w) + 1, w - 1)
    rows = np.where(won == won[down], won, 255).astype(np.uint8)
    return np.where(rows == rows[:, right], rows, 255).astype(np.uint8)


def _upsample_argmax_cpu(logits: torch.Tensor, size: tuple[int, int], max_elements: int) -> torch.Tensor | None:
    """:func:`upsample_argmax` on a CPU, interpolating only where the class can change: inside a source cell whose
    four corners agree (:func:`_settled_cells`) the argmax is that class, so only pixels near a class boundary
    get their 9 interpolated logits (PyTorch's formula, float32). ``None`` when most pixels are near a boundary
    (noise-like logits): the full interpolation is then as fast."""
    c, h, w = logits.shape
    H, W = size
    x = logits.detach().float().numpy()
    cells = _settled_cells(x)
    # the source row/column of each output pixel, in float32 (PyTorch's arithmetic) and float64: where the two
    # differ by rounding, the pixel is settled only if both cells agree
    rows = [_source_rows(h, H, t) for t in (np.float32, np.float64)]
    cols = [_source_rows(w, W, t) for t in (np.float32, np.float64)]
    by_row = cells[rows[0]]
    if not np.array_equal(rows[0], rows[1]):
        by_row = np.where(by_row == cells[rows[1]], by_row, 255).astype(np.uint8)
    out = np.ascontiguousarray(by_row[:, cols[0]])
    if not np.array_equal(cols[0], cols[1]):
        out = np.where(out == by_row[:, cols[1]], out, 255).astype(np.uint8)
    open_ = np.flatnonzero(out == 255)
    if open_.size > out.size // 2:
        return None
    y0, y1, wy = _source_weights(h, H)
    x0, x1, wx = _source_weights(w, W)
    flat, planes = out.reshape(-1), x.reshape(c, h * w)
    step = max(1, max_elements // c)
    for k in range(0, open_.size, step):
        pix = open_[k:k + step]
        ys, xs = np.divmod(pix, W)
        a, b, v, u = y0[ys] * w, y1[ys] * w, wy[ys], wx[xs]
        left, right = x0[xs], x1[xs]
        top = planes[:, a + left] * (1 - u) + planes[:, a + right] * u  # C × pixels: one plane per class
        bottom = planes[:, b + left] * (1 - u) + planes[:, b + right] * u
        flat[pix] = _top_two(top * (1 - v) + bottom * v)[0]
    return torch.from_numpy(out)


def upsample_argmax(logits: torch.Tensor, size: tuple[int, int], max_elements: int = 1 << 24) -> torch.Tensor:
    """argmax over classes of ``logits`` (C×h×w) resized bilinearly (``align_corners=False``) to ``size`` (H, W):
    an H×W uint8 tensor, as ``F.interpolate(...).argmax(0)`` (ties go to the first class).

    On a CPU only the pixels near a class boundary are interpolated (:func:`_upsample_argmax_cpu`): the rest
    take the class their whole source cell agrees on, which is exactly the argmax there; near a boundary the
    result can differ from ``F.interpolate``'s only where two classes tie to float32 rounding. Otherwise (or
    for noise-like logits) the full interpolation runs; when C·H·W exceeds ``max_elements`` it runs in bands of
    rows (widths first, then each band's rows), so memory stays bounded."""
    c, h, _ = logits.shape
    H, W = (int(v) for v in size)
    if logits.device.type == "cpu" and c < 255:
        fast = _upsample_argmax_cpu(logits, (H, W), max_elements)
        if fast is not None:
            return fast
    if c * H * W <= max_elements:
        return _argmax0(F.interpolate(logits[None], (H, W), mode="bilinear", align_corners=False)[0])
    wide = F.interpolate(logits[None], (h, W), mode="bilinear", align_corners=False)[0]  # rows unchanged
    out = torch.empty((H, W), dtype=torch.uint8, device=logits.device)
    band = max(1, max_elements // (c * W))
    for y0 in range(0, H, band):
        ys = torch.arange(y0, min(H, y0 + band), device=logits.device, dtype=torch.float64)
        src = ((ys + 0.5) * (h / H) - 0.5).clamp(min=0)  # PyTorch's source coordinate for align_corners=False
        i0 = src.floor().long().clamp(max=h - 1)
        i1 = (i0 + 1).clamp(max=h - 1)
        wgt = (src - i0).to(logits.dtype)[None, :, None]
        out[y0:y0 + len(ys)] = _argmax0(wide[:, i0] * (1 - wgt) + wide[:, i1] * wgt)
    return out


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(shape):
        return mask
    return np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.Resampling.NEAREST))


# --- the parser -------------------------------------------------------------------------------
class NonFiniteOutputError(ValueError):
    """The network answered NaN or infinite logits: no mask or probability made of them means anything."""


def _check_finite(seg: torch.Tensor, cls: torch.Tensor | None, model: str, sources: list[str]) -> None:
    """A :class:`NonFiniteOutputError` naming the model and the images where the logits are not all finite
    (they would become an all-background mask and NaN probabilities, with no word said)."""
    # a NaN or infinite logit makes its image's sum NaN or infinite: one sum an image, far cheaper than testing
    # every logit, which runs only where a sum is not finite (finite logits can still overflow a float32 sum)
    if bool(torch.isfinite(seg.flatten(1).sum(1)).all()) and (cls is None or bool(torch.isfinite(cls).all())):
        return
    bad = ~torch.isfinite(seg).flatten(1).all(1)
    if cls is not None:
        bad |= ~torch.isfinite(cls).flatten(1).all(1)
    if bool(bad.any()):
        names = [sources[i] for i in torch.nonzero(bad).flatten().tolist()]
        raise NonFiniteOutputError(f"{model}: the network answered NaN or infinite logits for "
                                   f"{', '.join(names[:3])}{f' (+{len(names) - 3})' if len(names) > 3 else ''}; "
                                   "its weights are likely corrupted")


def check_batch_size(value) -> int:
    """``value`` as a batch size: a whole number ≥ 1, else a ``ValueError`` saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"batch size must be a whole number of at least 1, got {value!r}")
    return int(value)


def _prior_rows(prior, n: int | None) -> torch.Tensor | None:
    """``prior`` as a 8-vector (same for every image) or N×8 (one per image)."""

    if prior is None:
        return None
    if isinstance(prior, str):
        return parse_prior(prior)
    if isinstance(prior, (list, tuple)) and prior and all(isinstance(p, str) for p in prior):
        return torch.stack([parse_prior(p) for p in prior])
    p = torch.as_tensor(np.asarray(prior, dtype=np.float32))
    if p.ndim == 1 and p.shape[0] == NUM_CLOTHING:
        return p
    if p.ndim == 2 and p.shape[1] == NUM_CLOTHING and (n is None or p.shape[0] == n):
        return p
    raise ValueError(f"prior must be a string like 'skirt,-dress', an {NUM_CLOTHING}-vector or one per image "
                     f"({n}×{NUM_CLOTHING}), got shape {tuple(p.shape)}")


def default_workers() -> int:
    """Threads that read photos and finish results beside the network: the cores but one, which the network's
    own thread keeps busy (at least 1, at most 8): on 2 cores a second pool thread only adds contention, more CPU
    time a photo for no photo more a second (``bench/run.py --only parse_cost`` shows it)."""
    return max(1, min(8, (os.cpu_count() or 1) - 1))


@contextmanager
def _thread_pool(workers: int):
    if workers == 0:
        yield None
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clothparse-parse")
    try:
        yield pool
    finally:  # a caller that stops early (Ctrl-C, an error, a break) does not wait for batches it will not see
        pool.shutdown(wait=True, cancel_futures=True)


def _in_order(slots: list) -> Iterator:
    """A started batch's results in order, each as soon as it is done."""
    for slot in slots:
        yield slot.result() if isinstance(slot, Future) else slot


class Parser:
    """A loaded model ready to parse images.

    ``run``: a run folder — or anything :meth:`from_pretrained` takes (a package folder, an ``.onnx`` file, a Hub
    repository id), so ``clothparse parse --model`` goes the same way; ``model``: an ``nn.Module`` with
    ``input_size`` (or give ``input_size=``), fed with ``normalisation`` (default ImageNet's). The network runs
    behind a backend (:mod:`clothparse.parser.backends`: torch, or onnxruntime for an ``.onnx`` file); the rest of the
    parse is the same for both. ``workers``: threads that read the next batch and finish each result (full-size
    mask, boxes, colours) while the network runs, and one more that runs the network on the next batch while
    this one's results are finished and the caller handles them (default :func:`default_workers`; 0: one image
    after the other, no threads).
    ``tta``: run the network on each photo and on its mirror image and average the two
    (:class:`~clothparse.parser.backends.MirrorAveraged`): twice the network's time for a little more accuracy."""

    def __init__(self, run: str | Path | None = None, model: torch.nn.Module | None = None,
                 device: str | None = None, batch_size: int = 8, input_size: tuple[int, int] | None = None,
                 min_area: float = 0.0005, colours: bool = True, colour_options: dict | None = None,
                 amp: bool | None = None, work_max_side: int = WORK_MAX_SIDE, normalisation=None,
                 workers: int | None = None, tta: bool = False):
        if (run is None) == (model is None):
            raise ValueError("give exactly one of run= (a run folder) or model= (an nn.Module)")
        if run is not None:
            network = load_network(run, input_size=input_size)  # refuses another class scheme
        else:
            size = tuple(input_size) if input_size is not None else getattr(model, "input_size", None)
            if size is None:
                raise ValueError("model= needs input_size=(H, W) (the model has no .input_size)")
            network = Network(input_size=size, normalisation=normalisation or "imagenet",
                              model_name=type(model).__name__, module=model)
        self._setup(network, device=device, batch_size=batch_size, min_area=min_area, colours=colours,
                    colour_options=colour_options, amp=amp, work_max_side=work_max_side, workers=workers, tta=tta)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, input_size: tuple[int, int] | None = None,
                        revision: str | None = None, token: str | bool | None = None,
                        cache_dir: str | Path | None = None, local_files_only: bool = False, **options) -> Parser:
        """A parser for a packaged model (:mod:`clothparse.parser.package`): a package folder (read locally, no
        network), an ``.onnx`` file with its sidecar (run by onnxruntime), or a Hugging Face Hub repository id
        (``owner/name``; ``revision``, ``token``, ``cache_dir``, ``local_files_only`` go to the download).
        ``input_size``, if given, must be the package's own; ``**options`` are :class:`Parser`'s (``device``,
        ``batch_size``, ``min_area``, ``colours``, …)."""
        hub = {"revision": revision, "token": token, "cache_dir": cache_dir, "local_files_only": local_files_only}
        parser = cls.__new__(cls)
        parser._setup(load_network(name_or_path, input_size=input_size, **hub), **options)
        return parser

    def _setup(self, network, device: str | None = None, batch_size: int = 8, min_area: float = 0.0005,
               colours: bool = True, colour_options: dict | None = None, amp: bool | None = None,
               work_max_side: int = WORK_MAX_SIDE, workers: int | None = None, tta: bool = False) -> None:
        self.device = resolve_device(device)
        self.amp = self.device.startswith("cuda") if amp is None else amp
        self.network = network.backend(self.device, self.amp)
        self.tta = bool(tta)
        if self.tta:
            self.network = MirrorAveraged(self.network)
        #: the torch module (``None`` for an onnxruntime network)
        self.model = getattr(self.network, "module", None)
        self.run, self.model_name = network.source, network.model_name
        self.stats = stats_of(network.normalisation)
        self.input_size = tuple(int(v) for v in network.input_size)
        self.batch_size, self.min_area, self.colours = int(batch_size), float(min_area), colours
        self.colour_options = dict(colour_options or {})
        self.work_max_side = int(work_max_side)
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (one image after the other) or more, got {workers!r}")
        self._warned_soft = False

    @property
    def batch_size(self) -> int:
        """Images per forward pass; at least 1 (checked whenever it is set, by the constructor too)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = check_batch_size(value)

    # the network on a batch of loaded images
    @torch.inference_mode()
    def _forward(self, loaded: list[LoadedImage], prior: torch.Tensor | None, hard: bool):
        batch = np.stack([resize_image(li.image, self.input_size) for li in loaded])
        x = normalise_batch(torch.from_numpy(batch).to(self.device), self.stats)
        if prior is not None:
            prior = prior.to(self.device)
            prior = prior.expand(len(loaded), -1) if prior.ndim == 1 else prior
        seg, cls = self.network(x, prior=prior if self.network.takes_prior else None)
        _check_finite(seg, cls, self.run or self.model_name, [li.source for li in loaded])
        if prior is not None and not hard and not self._warned_soft and (cls is None or not self.network.takes_prior):
            why = "has no ClassBranch" if cls is None else f"runs in {self.network.name}, which takes no prior"
            warnings.warn(f"{self.model_name} {why}: a prior changes its output only with hard=True", stacklevel=3)
            self._warned_soft = True
        if hard:

            seg = apply_hard(seg, prior)
        return seg, cls

    def _result(self, li: LoadedImage, seg: torch.Tensor, cls: torch.Tensor | None, prior_row, hard: bool,
                original=None):
        mask = upsample_argmax(seg, li.size).cpu().numpy()
        counts = class_counts(mask)
        total = max(int(counts.sum()), 1)
        min_pixels = max(1, math.ceil(self.min_area * total))
        present = [c for c in range(1, NUM_CLASSES) if counts[c] >= min_pixels]
        if cls is not None:
            probs, source = torch.sigmoid(cls).cpu().numpy(), "classbranch"
            said = {CLOTHING[i] for i in range(NUM_CLOTHING) if probs[i] > 0.5}
            disagree = tuple(sorted(said ^ {CLASSES[c] for c in present}, key=CLASSES.index))
        else:
            probs, source, disagree = torch.softmax(seg, 0)[1:].amax(dim=(1, 2)).cpu().numpy(), "pixels", ()
        boxes = tight_boxes(mask, present)
        colours = {}
        if self.colours and present:
            small = _resize_mask(mask, li.image.shape[:2])
            colours = garment_colours(li.image, small, classes=present,
                                      pixel_counts={c: int(counts[c]) for c in present},
                                      boxes=boxes if small is mask else None, **self.colour_options)
        return ParseResult(
            source=li.source, size=tuple(li.size), mask=mask, classes=tuple(CLASSES[c] for c in present),
            probabilities={CLOTHING[i]: float(probs[i]) for i in range(NUM_CLOTHING)}, probability_source=source,
            fractions={CLASSES[c]: float(counts[c] / total) for c in range(NUM_CLASSES)},
            boxes={CLASSES[c]: box for c, box in boxes.items()}, colours=colours,
            disagreements=disagree,
            prior=None if prior_row is None else [None if math.isnan(v) else float(v) for v in prior_row.tolist()],
            hard=hard, image=li.image, original=original if li.image.shape[:2] != tuple(li.size) else None)

    def iter_parse(self, images: Iterable, prior=None, hard: bool = False,
                   errors: str = "raise") -> Iterator[ParseResult | ParseFailure]:
        """Parse ``images`` batch by batch, yielding one result per input in order.

        ``errors="raise"``: an unreadable input raises :class:`ImageLoadError`; ``"report"``: it yields a
        :class:`ParseFailure` and the others go on."""
        if errors not in ("raise", "report"):
            raise ValueError(f"errors must be 'raise' or 'report', got {errors!r}")
        images = list(images) if not isinstance(images, (list, tuple)) else images
        prior_t = _prior_rows(prior, len(images))
        if hard and prior_t is None:
            raise ValueError("hard=True needs a prior (which classes are absent)")
        with _thread_pool(self.workers) as pool, _thread_pool(1 if pool is not None else 0) as ahead:
            batches = zip(range(0, len(images), self.batch_size),
                          load_batches(images, self.batch_size, self.work_max_side, pool=pool))
            if ahead is None:
                for start, slots in batches:
                    yield from self._start_batch(images, start, slots, prior_t, hard, errors, None)
                return
            # three stages side by side: the network on the next batch (in ``ahead``), this batch's results (in
            # ``pool``) and the caller with the results yielded (writing files, mostly); on a few cores any one
            # of them alone would leave some idle
            started: deque[Future] = deque()
            for start, slots in batches:
                started.append(ahead.submit(self._start_batch, images, start, slots, prior_t, hard, errors, pool))
                if len(started) > 1:
                    yield from _in_order(started.popleft().result())
            while started:
                yield from _in_order(started.popleft().result())

    def _start_batch(self, images: list, start: int, slots: list, prior_t, hard: bool, errors: str,
                     pool) -> list:
        """One batch in order: the network on its readable images, then each image's mask, boxes and colours —
        submitted to ``pool`` (futures in the list returned) or, without one, computed here. An unreadable image
        is a :class:`ParseFailure` in its place (``errors="report"``) or raises."""
        for slot in slots:
            if isinstance(slot, ImageLoadError) and errors == "raise":
                raise slot
        slots = [ParseFailure(s.source, s.reason) if isinstance(s, ImageLoadError) else s for s in slots]
        idx = [k for k, s in enumerate(slots) if isinstance(s, LoadedImage)]
        if not idx:
            return slots
        rows = prior_t if prior_t is None or prior_t.ndim == 1 else prior_t[[start + k for k in idx]]
        loaded = [slots[k] for k in idx]
        seg, cls = self._forward(loaded, rows, hard)

        def result(j: int) -> ParseResult:
            row = None if rows is None else (rows if rows.ndim == 1 else rows[j])
            return self._result(loaded[j], seg[j], None if cls is None else cls[j], row, hard,
                                original=images[start + idx[j]])

        for j, k in enumerate(idx):
            slots[k] = pool.submit(result, j) if pool is not None else result(j)
        return slots

    def __call__(self, images, prior=None, hard: bool = False) -> list[ParseResult]:
        return list(self.iter_parse(_as_list(images), prior=prior, hard=hard, errors="raise"))


def _as_list(images) -> list:
    """One image (path, PIL image, array) or a sequence of them, as a list."""
    if isinstance(images, (str, Path, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim in (2, 3)
                                                        and images.dtype != object):
        return [images]
    return list(images)


def parse(images, run: str | Path | None = None, model: torch.nn.Module | None = None, prior=None,
          hard: bool = False, device: str | None = None, batch_size: int = 8,
          input_size: tuple[int, int] | None = None, **options) -> list[ParseResult]:
    """Parse one image or a list of them (paths, PIL images, arrays) with a run folder or a model.

    Returns a :class:`ParseResult` per image; an unreadable file raises :class:`ImageLoadError` naming it.
    ``**options`` go to :class:`Parser` (``min_area``, ``colours``, ``colour_options``, ``amp``).
    """
    parser = Parser(run=run, model=model, device=device, batch_size=batch_size, input_size=input_size, **options)
    return parser(images, prior=prior, hard=hard)
