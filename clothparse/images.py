"""Reading the parser's inputs: paths, PIL images or arrays as RGB uint8, at most ``WORK_MAX_SIDE`` on a side.

EXIF orientation is applied; grayscale, palette, CMYK become RGB; transparency is composited on white;
16-bit images are scaled to 8 bit (by 1/257), floats in 0..1 by 255. An image whose longer side exceeds
``max_side`` is reduced first (PIL ``BOX``; a JPEG decodes directly at 1/2, 1/4 or 1/8 scale), and its
original size (after orientation) is kept beside it. An unreadable or missing file is an
:class:`ImageLoadError` naming it.
"""
from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "WORK_MAX_SIDE", "ImageLoadError", "LoadedImage", "load_image", "to_rgb_array",
           "load_batches", "expand_inputs", "empty_folders", "IMAGENET_STATS", "stats_of", "normalise_batch"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Longer side above which an image is reduced before anything else (see the module docstring).
WORK_MAX_SIDE: int = 2048
_ORIENTATION = 0x0112  # the EXIF tag
#: fastai's ``imagenet_stats`` (mean, std per RGB channel): ResNet runs' normalisation, and that of runs that
#: predate per-encoder normalisation (their params say ``"imagenet"``).
IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


class ImageLoadError(ValueError):
    """An input image could not be read; ``source`` names it."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: cannot read image ({reason})")
        self.source, self.reason = source, reason


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
        if mode == "RGB":  # no converted copy: for a huge photo each full-size copy counts
            return np.asarray(image)
        return np.asarray(image.convert("RGB"))  # L, 1, P, CMYK, YCbCr, LAB, HSV
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


def _read_file(path: Path, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB of an image file (EXIF-oriented; a large JPEG decoded at a reduced scale) and its displayed (H, W)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        orientation = im.getexif().get(_ORIENTATION, 1)
        w, h = im.size
        if orientation in (5, 6, 7, 8):  # the transposed orientations swap width and height
            w, h = h, w
        if max(w, h) > max_side and im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale
            s = max_side / max(w, h)
            im.draft(None, (math.ceil(im.size[0] * s), math.ceil(im.size[1] * s)))
        im.load()
        return to_rgb_array(ImageOps.exif_transpose(im) if orientation != 1 else im), (h, w)


def load_image(image, max_side: int = WORK_MAX_SIDE, source: str | None = None) -> LoadedImage:
    """Read a path / PIL image / array into a :class:`LoadedImage`; :class:`ImageLoadError` if unreadable."""
    from PIL import Image, ImageOps

    if isinstance(image, (str, Path)):
        path = Path(image)
        source = source or str(path)
        if not path.is_file():
            raise ImageLoadError(source, "no such file" if not path.exists() else "not a file")
        try:
            rgb, size = _read_file(path, max_side)
        except (OSError, ValueError, SyntaxError, EOFError, TypeError, Image.DecompressionBombError) as err:
            raise ImageLoadError(source, f"{type(err).__name__}: {err}") from err
        return LoadedImage(source, _reduce(rgb, max_side), size)
    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
    rgb = to_rgb_array(image)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageLoadError(source or "<array>", f"empty image {rgb.shape}")
    return LoadedImage(source or "<array>", _reduce(rgb, max_side), rgb.shape[:2])


def _label(item, index: int) -> str:
    return str(item) if isinstance(item, (str, Path)) else f"<image {index}>"


def _try_load(item, index: int, max_side: int) -> LoadedImage | ImageLoadError:
    try:
        return load_image(item, max_side, source=_label(item, index))
    except ImageLoadError as err:
        return err


def load_batches(items: list, batch_size: int, max_side: int = WORK_MAX_SIDE,
                 pool: Executor | None = None) -> Iterator[list[LoadedImage | ImageLoadError]]:
    """``items`` loaded batch by batch, in order: each slot a :class:`LoadedImage` or the
    :class:`ImageLoadError` that reading it raised (the caller decides whether to raise or report it).

    With ``pool`` (a thread pool: PIL decodes without holding the GIL) the next batch is read while the
    caller works on this one; without it, one image after the other."""
    def submit(start: int):
        chunk = items[start:start + batch_size]
        if pool is None:
            return [_try_load(item, start + k, max_side) for k, item in enumerate(chunk)]
        return [pool.submit(_try_load, item, start + k, max_side) for k, item in enumerate(chunk)]

    starts = range(0, len(items), batch_size)
    ahead = submit(0) if starts else []
    for i, _ in enumerate(starts):
        current = ahead
        if i + 1 < len(starts):
            ahead = submit(starts[i + 1])
        yield current if pool is None else [f.result() for f in current]


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


def empty_folders(paths: Iterable[str | Path]) -> list[str]:
    """The folders among ``paths`` that hold no image file (:func:`expand_inputs` drops them; a caller that
    parses the rest says so)."""
    return [str(p) for p in paths if Path(p).is_dir() and not expand_inputs([p])]


def stats_of(normalisation) -> tuple[list[float], list[float]]:
    """A run's recorded ``normalisation`` (``{"mean": [...], "std": [...]}`` or ``"imagenet"``) → (mean, std)."""
    if normalisation == "imagenet":
        return list(IMAGENET_STATS[0]), list(IMAGENET_STATS[1])
    if (isinstance(normalisation, dict) and all(len(normalisation.get(k, ())) == 3 for k in ("mean", "std"))
            and all(float(v) > 0 for v in normalisation["std"])):
        return [float(v) for v in normalisation["mean"]], [float(v) for v in normalisation["std"]]
    raise ValueError(f"unknown input normalisation {normalisation!r}: expected 'imagenet' or "
                     "{'mean': [r, g, b], 'std': [r, g, b]}")


def normalise_batch(images_uint8, stats=IMAGENET_STATS):
    """B×H×W×3 uint8 tensor → B×3×H×W float: ``(x / 255 - mean) / std`` with ``stats`` = (mean, std), the
    normalisation the model was trained with (:func:`stats_of` of its run's params)."""
    import torch

    mean = torch.tensor(stats[0], device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(stats[1], device=images_uint8.device).view(1, 3, 1, 1)
    return (images_uint8.permute(0, 3, 1, 2).float() / 255.0 - mean) / std

