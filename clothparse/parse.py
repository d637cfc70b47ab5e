"""Use a trained model: parse photos into the 9 classes, box and colour-tag every garment, inject a prior.

``parse(images, run=...)`` (or a reusable :class:`Parser`) returns one :class:`ParseResult` per image:

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
- ``colours``: per present class, its dominant colours (:mod:`clothparse.colours`).

A **prior** ("skirt,-dress", an 8-vector 1/0/NaN, or one per image) enters the ClassBranch (soft, see
:mod:`clothparse.injection`); ``hard=True`` also forbids the absent classes in the output (any model).

**Inputs**: paths, PIL images or arrays (H×W gray, H×W×3 RGB, H×W×4 RGBA; uint8, uint16 scaled by 1/257,
float in 0..1). EXIF orientation is applied; grayscale, palette, CMYK become RGB; transparency is composited
on white; 16-bit images are scaled to 8 bit. Images larger than ``work_max_side`` (2048 px) are reduced
first (JPEGs decode directly at a reduced scale): the network input is far smaller anyway, colours are
computed on that copy (pixel counts for ``too_small`` at the original resolution), and the mask is still
returned at the original size. **Unreadable or missing files**: :func:`parse` raises :class:`ImageLoadError`
naming the file; :meth:`Parser.iter_parse` with ``errors="report"`` yields a :class:`ParseFailure` in its
place and goes on (the command line uses that: reported, skipped, exit code 1).
"""
from __future__ import annotations

import csv
import glob
import math
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .categories import CLASSES, CLOTHING, NUM_CLASSES, NUM_CLOTHING, PALETTE
from .colours import GarmentColours, garment_colours

__all__ = ["IMAGE_EXTENSIONS", "ImageLoadError", "LoadedImage", "ParseResult", "ParseFailure", "Parser", "parse",
           "load_image", "to_rgb_array", "upsample_argmax", "overlay", "expand_inputs", "write_outputs",
           "summary_row", "summary_table", "figure_results", "add_parser", "main"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Longer side above which an image is reduced before anything else (see the module docstring).
WORK_MAX_SIDE: int = 2048


class ImageLoadError(ValueError):
    """An input image could not be read; ``source`` names it."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: cannot read image ({reason})")
        self.source, self.reason = source, reason


# --- loading ----------------------------------------------------------------------------------
@dataclass
class LoadedImage:
    """An input as RGB uint8 (``image``, at most ``work_max_side`` on its longer side) and its original size."""

    source: str
    image: np.ndarray
    size: tuple[int, int]  # original (H, W), after EXIF orientation


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale an integer/float array to uint8: uint16 (and int data above 255) by 1/257, floats in 0..1 by 255."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float64))
        scale = 255.0 if a.size and a.max() <= 1.0 else 1.0
        return np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        top = int(a.max()) if a.size else 0
        if a.dtype == np.uint16 or a.dtype.newbyteorder("=") == np.dtype(np.uint16) or 255 < top <= 65535:
            return np.round(a.astype(np.float64) / 257.0).clip(0, 255).astype(np.uint8)
        if top > 65535:
            return np.round(a.astype(np.float64) * (255.0 / top)).clip(0, 255).astype(np.uint8)
        return a.clip(0, 255).astype(np.uint8)
    raise ValueError(f"unsupported array dtype {a.dtype}")


def to_rgb_array(image) -> np.ndarray:
    """A PIL image or array as H×W×3 uint8 RGB (mode/dtype rules: see the module docstring)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        mode = image.mode
        if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float gray: scale, don't clip
            return to_rgb_array(np.asarray(image))
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))  # RGB, L, 1, P, CMYK, YCbCr, LAB, HSV
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.repeat(_to_uint8(a)[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"an image array must be H×W, H×W×3 or H×W×4, got shape {a.shape}")
    a = _to_uint8(a)
    if a.shape[2] == 4:  # straight alpha, composited on white
        alpha = a[:, :, 3:].astype(np.float32) / 255.0
        a = np.round(a[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(a)


def _reduce(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


_ORIENTATION = 0x0112


def load_image(image, max_side: int = WORK_MAX_SIDE, source: str | None = None) -> LoadedImage:
    """Read a path / PIL image / array into a :class:`LoadedImage`; :class:`ImageLoadError` if unreadable."""
    from PIL import Image, ImageOps

    if isinstance(image, (str, Path)):
        path = Path(image)
        source = source or str(path)
        if not path.is_file():
            raise ImageLoadError(source, "no such file" if not path.exists() else "not a file")
        try:
            with Image.open(path) as im:
                orientation = im.getexif().get(_ORIENTATION, 1)
                w, h = im.size
                if orientation in (5, 6, 7, 8):  # the transposed orientations swap width and height
                    w, h = h, w
                if max(w, h) > max_side and im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale
                    s = max_side / max(w, h)
                    im.draft(None, (math.ceil(im.size[0] * s), math.ceil(im.size[1] * s)))
                im.load()
                rgb = to_rgb_array(ImageOps.exif_transpose(im))
        except ImageLoadError:
            raise
        except (OSError, ValueError, SyntaxError, EOFError, TypeError, Image.DecompressionBombError) as err:
            raise ImageLoadError(source, f"{type(err).__name__}: {err}") from err
        return LoadedImage(source, _reduce(rgb, max_side), (h, w))
    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
    rgb = to_rgb_array(image)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageLoadError(source or "<array>", f"empty image {rgb.shape}")
    return LoadedImage(source or "<array>", _reduce(rgb, max_side), rgb.shape[:2])


# --- results ----------------------------------------------------------------------------------
@dataclass
class ParseResult:
    """What :func:`parse` says about one image (see the module docstring)."""

    source: str
    size: tuple[int, int]
    mask: np.ndarray = field(repr=False)
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

    @property
    def main_colours(self) -> dict[str, str | None]:
        """Per present class the name of its largest colour (``None``: too small)."""
        return {c: (self.colours[c].main.name if c in self.colours and self.colours[c].main else None)
                for c in self.classes}

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        """The image with the mask's garments tinted in their palette colour (at ``image``'s resolution)."""
        if self.image is None:
            raise ValueError(f"{self.source}: the result keeps no image")
        return overlay(self.image, self.mask, alpha)

    def to_dict(self) -> dict:
        """JSON-ready (no arrays)."""
        return {"source": self.source, "height": self.size[0], "width": self.size[1], "classes": list(self.classes),
                "probabilities": {k: round(v, 5) for k, v in self.probabilities.items()},
                "probability_source": self.probability_source,
                "fractions": {k: round(v, 6) for k, v in self.fractions.items()},
                "boxes": {k: list(v) for k, v in self.boxes.items()},
                "colours": {k: v.to_dict() for k, v in self.colours.items()},
                "disagreements": list(self.disagreements), "prior": self.prior, "hard": self.hard}


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


def upsample_argmax(logits: torch.Tensor, size: tuple[int, int], max_elements: int = 1 << 24) -> torch.Tensor:
    """argmax over classes of ``logits`` (C×h×w) resized bilinearly (``align_corners=False``) to ``size`` (H, W):
    an H×W uint8 tensor. Equal to ``F.interpolate(...).argmax(0)``, but when C·H·W exceeds ``max_elements`` the
    rows are interpolated in bands (widths first, then each band's rows), so memory stays bounded."""
    c, h, _ = logits.shape
    H, W = (int(v) for v in size)
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
    from PIL import Image

    return np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (H×W×3 uint8) with garment pixels blended with their palette colour (mask resized to fit)."""
    mask = _resize_mask(np.asarray(mask, dtype=np.uint8), image.shape[:2])
    colour = np.asarray(PALETTE, dtype=np.float32)[mask]
    out = image.astype(np.float32)
    fg = mask > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colour[fg]
    return np.round(out).astype(np.uint8)


def _boxes(mask: np.ndarray, classes: Iterable[int]) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for c in classes:
        m = mask == c
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        out[CLASSES[c]] = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return out


# --- the parser -------------------------------------------------------------------------------
def _prior_rows(prior, n: int | None) -> torch.Tensor | None:
    """``prior`` as a 8-vector (same for every image) or N×8 (one per image)."""
    from .injection import parse_prior

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


class Parser:
    """A loaded model ready to parse images (``run`` folder or an ``nn.Module`` with ``input_size``)."""

    def __init__(self, run: str | Path | None = None, model: torch.nn.Module | None = None,
                 device: str | None = None, batch_size: int = 8, input_size: tuple[int, int] | None = None,
                 min_area: float = 0.0005, colours: bool = True, colour_options: dict | None = None,
                 amp: bool | None = None, work_max_side: int = WORK_MAX_SIDE):
        from .evaluate import load_model
        from .models import deployable
        from .train import resolve_device

        if (run is None) == (model is None):
            raise ValueError("give exactly one of run= (a run folder) or model= (an nn.Module)")
        self.device = resolve_device(device or "auto")
        if run is not None:
            model, params = load_model(Path(run), "cpu")  # refuses another class scheme
            size = tuple(int(v) for v in params.get("input_size", params["size"]))
            if input_size is not None and tuple(input_size) != size:
                raise ValueError(f"{run} was trained at {size[0]}×{size[1]}; input_size={tuple(input_size)} differs")
            normalisation = params.get("normalisation", "imagenet")
            self.run, self.model_name = str(Path(run)), params["model"]
        else:
            size = tuple(input_size) if input_size is not None else getattr(model, "input_size", None)
            if size is None:
                raise ValueError("model= needs input_size=(H, W) (the model has no .input_size)")
            normalisation, self.run, self.model_name = "imagenet", None, type(model).__name__
        if normalisation != "imagenet":
            raise ValueError(f"unknown input normalisation {normalisation!r} (this parser knows 'imagenet')")
        self.input_size = tuple(int(v) for v in size)
        self.model = deployable(model).to(self.device).eval()
        self.batch_size, self.min_area, self.colours = int(batch_size), float(min_area), colours
        self.colour_options = dict(colour_options or {})
        self.amp = self.device.startswith("cuda") if amp is None else amp
        self.work_max_side = int(work_max_side)
        self._warned_soft = False

    # the network on a batch of loaded images
    @torch.inference_mode()
    def _forward(self, loaded: list[LoadedImage], prior: torch.Tensor | None, hard: bool):
        from .evaluate import _normalise
        from .injection import apply_hard
        from .store import resize_image

        batch = np.stack([resize_image(li.image, self.input_size) for li in loaded])
        x = _normalise(torch.from_numpy(batch).to(self.device))
        if prior is not None:
            prior = prior.to(self.device)
            prior = prior.expand(len(loaded), -1) if prior.ndim == 1 else prior
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp and self.device.startswith("cuda")):
            out = self.model(x, prior=prior) if prior is not None else self.model(x)
        seg = out[0].float()
        cls = out[1].float() if len(out) > 1 and out[1] is not None else None
        if prior is not None and cls is None and not hard and not self._warned_soft:
            warnings.warn(f"{self.model_name} has no ClassBranch: a prior changes its output only with hard=True",
                          stacklevel=3)
            self._warned_soft = True
        if hard:
            seg = apply_hard(seg, prior)
        return seg, cls

    def _result(self, li: LoadedImage, seg: torch.Tensor, cls: torch.Tensor | None, prior_row, hard: bool):
        mask = upsample_argmax(seg, li.size).cpu().numpy()
        counts = np.bincount(mask.ravel(), minlength=NUM_CLASSES)
        total = max(int(counts.sum()), 1)
        min_pixels = max(1, math.ceil(self.min_area * total))
        present = [c for c in range(1, NUM_CLASSES) if counts[c] >= min_pixels]
        if cls is not None:
            probs, source = torch.sigmoid(cls).cpu().numpy(), "classbranch"
            said = {CLOTHING[i] for i in range(NUM_CLOTHING) if probs[i] > 0.5}
            disagree = tuple(sorted(said ^ {CLASSES[c] for c in present}, key=CLASSES.index))
        else:
            probs, source, disagree = torch.softmax(seg, 0)[1:].amax(dim=(1, 2)).cpu().numpy(), "pixels", ()
        colours = {}
        if self.colours and present:
            small = _resize_mask(mask, li.image.shape[:2])
            colours = garment_colours(li.image, small, classes=present,
                                      pixel_counts={c: int(counts[c]) for c in present}, **self.colour_options)
        return ParseResult(
            source=li.source, size=tuple(li.size), mask=mask, classes=tuple(CLASSES[c] for c in present),
            probabilities={CLOTHING[i]: float(probs[i]) for i in range(NUM_CLOTHING)}, probability_source=source,
            fractions={CLASSES[c]: float(counts[c] / total) for c in range(NUM_CLASSES)},
            boxes=_boxes(mask, present), colours=colours, disagreements=disagree,
            prior=None if prior_row is None else [None if math.isnan(v) else float(v) for v in prior_row.tolist()],
            hard=hard, image=li.image)

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
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            slots: list[LoadedImage | ParseFailure] = []
            for k, item in enumerate(chunk):
                label = str(item) if isinstance(item, (str, Path)) else f"<image {start + k}>"
                try:
                    slots.append(load_image(item, self.work_max_side, source=label))
                except ImageLoadError as err:
                    if errors == "raise":
                        raise
                    slots.append(ParseFailure(label, err.reason))
            idx = [k for k, s in enumerate(slots) if isinstance(s, LoadedImage)]
            if idx:
                rows = None if prior_t is None else (prior_t if prior_t.ndim == 1 else prior_t[[start + k for k in idx]])
                seg, cls = self._forward([slots[k] for k in idx], rows, hard)
                for j, k in enumerate(idx):
                    row = None if rows is None else (rows if rows.ndim == 1 else rows[j])
                    slots[k] = self._result(slots[k], seg[j], None if cls is None else cls[j], row, hard)
            yield from slots

    def __call__(self, images, prior=None, hard: bool = False) -> list[ParseResult]:
        return list(self.iter_parse(_as_list(images), prior=prior, hard=hard, errors="raise"))


def _as_list(images) -> list:
    """One image (path, PIL image, array) or a sequence of them, as a list."""
    from PIL import Image

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


# --- files and the command line -----------------------------------------------------------------
def expand_inputs(paths: Iterable[str | Path]) -> list[str]:
    """Folders → their image files (sorted, not recursive); globs → matching image files; other paths as given
    (a missing file stays in the list so that it is reported). Duplicates are dropped, order kept."""
    out: list[str] = []
    for p in paths:
        p = str(p)
        path = Path(p)
        if path.is_dir():
            out += [str(f) for f in sorted(path.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        elif not path.exists() and glob.has_magic(p):
            matches = [m for m in sorted(glob.glob(p, recursive=True))
                       if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_EXTENSIONS]
            out += matches or [p]  # no match: reported as a missing file
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def _png_palette() -> list[int]:
    flat = [v for rgb in PALETTE for v in rgb]
    return flat + [0] * (768 - len(flat))


def write_outputs(result: ParseResult, out_dir: Path, stem: str, run: str | None = None) -> dict[str, str]:
    """``<stem>_mask.png`` (palette PNG, pixel value = class), ``<stem>_overlay.png`` and ``<stem>.json``."""
    from PIL import Image

    from . import runs

    out_dir = Path(out_dir)
    files = {"mask": f"{stem}_mask.png", "overlay": f"{stem}_overlay.png", "json": f"{stem}.json"}
    png = Image.fromarray(result.mask, mode="L")
    png.putpalette(_png_palette())  # L → P: values stay the class ids, viewers show the palette colours
    png.save(out_dir / files["mask"], optimize=True)
    Image.fromarray(result.overlay()).save(out_dir / files["overlay"])
    runs.write_json(out_dir / files["json"], {**result.to_dict(), "source": str(Path(result.source).resolve())
                                              if Path(result.source).exists() else result.source,
                                              "run": run, "mask": files["mask"], "overlay": files["overlay"]})
    return files


def _stems(files: list[str]) -> list[str]:
    """Output names: the file stem, made unique with -2, -3… (a.jpg and a.png, or one name in two folders)."""
    seen: dict[str, int] = {}
    out = []
    for f in files:
        stem = Path(f).stem or "image"
        n = seen.get(stem.lower(), 0) + 1
        seen[stem.lower()] = n
        out.append(stem if n == 1 else f"{stem}-{n}")
    return out


SUMMARY_COLUMNS = ["file", "status", "error", "height", "width", "classes",
                   *[f"colour_{c}" for c in CLOTHING], "mask", "overlay", "json"]


def _cli_prior(prior: str | None, present: str | None, absent: str | None) -> str | None:
    """--prior, --present and --absent as one prior string ("skirt,-dress")."""
    parts = [prior or ""]
    parts += [c.strip() for c in (present or "").split(",")]
    parts += ["-" + c.strip() for c in (absent or "").split(",") if c.strip()]
    text = ",".join(p for p in parts if p)
    return text or None


def summary_row(result: ParseResult | ParseFailure, file: str | None = None, written: dict | None = None) -> dict:
    """One row of ``summary.csv`` (:data:`SUMMARY_COLUMNS`): file, status, error, size, classes, main colours."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row["file"] = file or result.source
    if not result.ok:
        row.update(status="failed", error=result.error)
        return row
    main_colours = result.main_colours
    row.update(status="ok", height=result.size[0], width=result.size[1], classes=" ".join(result.classes),
               **{f"colour_{c}": main_colours.get(c) or "" for c in result.classes}, **(written or {}))
    return row


def summary_table(results: Iterable[ParseResult | ParseFailure], file_names: bool = True):
    """A DataFrame of :func:`summary_row` per result (``summary.csv``'s columns without the output files);
    ``file_names``: the file's name instead of its path."""
    import pandas as pd

    df = pd.DataFrame([summary_row(r) for r in results]).drop(columns=["mask", "overlay", "json"])
    if file_names:
        df["file"] = [Path(f).name for f in df["file"]]
    return df


def figure_results(results: list[ParseResult], compare: list[ParseResult] | None = None,
                   labels: tuple[str, str] = ("parsed", "compared"), height: float = 3.0):
    """One row per image: the photo, its overlay (and ``compare``'s overlay), and colour swatches per garment."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    cols = 4 if compare is not None else 3
    h, w = results[0].image.shape[:2]
    fig, axes = plt.subplots(len(results), cols, squeeze=False,
                             figsize=(cols * height * max(w / h, 0.75), len(results) * height))
    for row, res in enumerate(results):
        panels = [(res.image, res.source.rsplit("/", 1)[-1]), (res.overlay(), labels[0])]
        if compare is not None:
            panels.append((compare[row].overlay(), labels[1]))
        for ax, (img, title) in zip(axes[row], panels):
            ax.imshow(img)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        ax = axes[row, -1]
        ax.axis("off")
        ax.set_xlim(0, 1)
        ax.set_ylim(max(len(res.classes), 4), 0)  # the same row height in every panel
        for i, garment in enumerate(res.classes):
            gc = res.colours.get(garment)
            ax.add_patch(Rectangle((0, i + 0.15), 0.08, 0.7, color=np.asarray(PALETTE[CLASSES.index(garment)]) / 255))
            x = 0.12
            if gc is None or not gc.colours:
                ax.text(x, i + 0.5, f"{garment}: too small", va="center", fontsize=8)
                continue
            ax.text(x, i + 0.5, garment, va="center", fontsize=8)
            x = 0.36
            for colour in gc.colours:
                width = 0.6 * colour.share
                ax.add_patch(Rectangle((x, i + 0.15), width, 0.7, color=colour.hex, ec="0.6", lw=0.5))
                ax.text(x + width / 2, i + 0.5, f"{colour.name}\n{colour.share:.0%}", ha="center", va="center",
                        fontsize=6, color="white" if colour.lab[0] < 55 else "black")
                x += width + 0.01
        if not res.classes:
            ax.text(0, 0.5, "no garment found", va="center", fontsize=8)
    handles = [Patch(color=np.asarray(PALETTE[i]) / 255, label=CLASSES[i]) for i in range(1, NUM_CLASSES)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def main(args) -> int:
    """``clothparse parse``: parse files/folders/globs, write masks, overlays, JSONs and ``summary.csv``.

    Exit code 0 when every image was parsed, 1 when some failed (each is reported and listed in the CSV)."""
    from tqdm.auto import tqdm

    prior = _cli_prior(args.prior, getattr(args, "present", None), getattr(args, "absent", None))
    files = expand_inputs(args.paths)
    if not files:
        raise FileNotFoundError(f"no images in {' '.join(map(str, args.paths))}")
    parser = Parser(run=args.run, device=args.device, batch_size=args.batch_size)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = _stems(files)
    rows, failed = [], 0
    with tqdm(total=len(files), unit="img", desc="parse", disable=args.no_progress or None) as bar:
        results = parser.iter_parse(files, prior=prior, hard=args.hard, errors="report")
        for f, stem, res in zip(files, stems, results):
            if res.ok:
                rows.append(summary_row(res, f, write_outputs(res, out_dir, stem, run=parser.run)))
            else:
                failed += 1
                rows.append(summary_row(res, f))
                tqdm.write(f"clothparse parse: skipped {res.source}: {res.error}", file=sys.stderr)
            bar.update(1)
    with open(out_dir / "summary.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"parsed {len(files) - failed} of {len(files)} images ({failed} failed) → {out_dir}")
    return 1 if failed else 0


def add_parser(subparsers, handler) -> None:
    """Register ``clothparse parse`` (``func=handler``; the handler calls :func:`main`) and ``clothparse export``."""
    p = subparsers.add_parser("parse", help="parse photos with a trained run: masks, overlays, boxes, colours")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (their images) or globs")
    p.add_argument("--run", required=True, type=Path, help="run folder (params.json + model.safetensors)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--prior", default=None,
                   help='known classes, e.g. --prior=skirt,-dress (skirt present, no dress; write "=" before a '
                        'leading "-")')
    p.add_argument("--present", default=None, metavar="CLASSES", help="clothing classes known to be present: top,bag")
    p.add_argument("--absent", default=None, metavar="CLASSES", help="clothing classes known to be absent: dress")
    p.add_argument("--hard", action="store_true", help="forbid the prior's absent classes in the output")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)

    from .export import add_parser as add_export_parser

    add_export_parser(subparsers)
