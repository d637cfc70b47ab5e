"""What the parser writes of a result: per-image files and the rows of ``summary.csv`` (and the notebook's
table of them). The figures are :mod:`clothparse.parser.figures`; ``clothparse parse`` (files, folders and globs
in, an output folder out) is :func:`clothparse.parser.files.parse_files`.

Per parsed image: ``<stem>_mask.png`` (a palette PNG whose pixel values are the class ids),
``<stem>_overlay.jpg`` (the photo with the garments tinted: a photo, so a JPEG — a lossless PNG of it is several
times larger and slower to write, and the class ids are the mask's) and ``<stem>.json`` (:meth:`ParseResult.to_dict`
— per garment its box, pixel count and Kaggle-convention RLE mask under ``garments`` — plus the run and the
names of the files written). Per garment found, on request: ``cutouts/<stem>_<class>.png`` (RGBA, the photo
at its original resolution cropped to the garment's box, transparent outside the garment) and
``masks/<stem>_<class>.png`` (1-bit, the photo's size, white on the garment). Class names have no ``_``, so
these names never collide. ``summary.csv`` has a row per input (:data:`SUMMARY_COLUMNS`), a failed one
included, with its error, and the files written (paths relative to the output folder). ``classes`` limits
every output to those garments (:meth:`ParseResult.only`).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from clothparse.categories import CLOTHING, PALETTE
from clothparse.parser.garments import cutout

if TYPE_CHECKING:
    from clothparse.parser.parse import ParseFailure, ParseResult

__all__ = ["SUMMARY_COLUMNS", "write_outputs", "summary_row", "summary_table"]

SUMMARY_COLUMNS = ["file", "status", "error", "height", "width", "classes",
                   *[f"colour_{c}" for c in CLOTHING], "mask", "overlay", "json",
                   *[f"cutout_{c}" for c in CLOTHING], *[f"mask_{c}" for c in CLOTHING]]
#: the columns naming files written, left out of :func:`summary_table`
_FILE_COLUMNS = ["mask", "overlay", "json", *[f"cutout_{c}" for c in CLOTHING], *[f"mask_{c}" for c in CLOTHING]]


#: Pillow's zlib settings of the PNGs written (bytes differ between settings, pixels never): masks are long
#: runs of one value, which Z_RLE (strategy 3) at level 1 packs about as small as ``optimize`` at a third of
#: the time; a photo-like cut-out at level 1 is ~15 % larger than at the default 6 and ~3× faster to write.
PHOTO_PNG = {"compress_level": 1}
MASK_PNG = {"compress_level": 1, "compress_type": 3}
#: The overlay's JPEG settings: quality 90 with Pillow's default 4:2:0 chroma subsampling, as cameras save photos.
OVERLAY_JPEG = {"quality": 90}


def _png_palette() -> list[int]:
    flat = [v for rgb in PALETTE for v in rgb]
    return flat + [0] * (768 - len(flat))


def _write_file(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary name beside ``path``, then rename it: an interrupted or failed write never
    leaves a partial file under the real name (nor the temporary one)."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_image(image: Image.Image, path: Path, format: str, **options) -> None:
    _write_file(path, lambda tmp: image.save(tmp, format=format, **options))


def _json_value(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def to_json(obj, source: str) -> str:
    """``obj`` as strict JSON: NaN and infinities (which strict parsers refuse) are a ``ValueError`` naming
    ``source``, never written."""
    try:
        return json.dumps(obj, indent=2, sort_keys=True, default=_json_value, allow_nan=False)
    except ValueError as err:
        raise ValueError(f"{source}: the result holds NaN or infinite values, which JSON cannot hold "
                         f"({_non_finite(obj) or err})") from None


def _non_finite(obj, where: str = "") -> str:
    """The first key path holding a non-finite float ("" where none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "the value"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}.{k}" if where else str(k))
        if found:
            return found
    return ""


def write_outputs(result: ParseResult, out_dir: Path, stem: str, run: str | None = None, *,
                  cutouts: bool = False, masks: bool = False) -> dict[str, str]:
    """``<stem>_mask.png`` (palette PNG, pixel value = class), ``<stem>_overlay.jpg`` and ``<stem>.json``;
    with ``cutouts`` / ``masks`` also each garment's ``cutouts/<stem>_<class>.png`` / ``masks/<stem>_<class>.png``.
    Returns the files written by :data:`SUMMARY_COLUMNS` name (``cutout_<class>``, ``mask_<class>``).

    Each file is written whole or not at all; an image whose files are interrupted or fail part-way leaves none
    of them (what is written is then all or nothing per image, as ``summary.csv`` lists it)."""
    out_dir = Path(out_dir)
    files = {"mask": f"{stem}_mask.png", "overlay": f"{stem}_overlay.jpg", "json": f"{stem}.json"}
    try:
        _write_image_files(result, out_dir, stem, run, files, cutouts=cutouts, masks=masks)
    except BaseException:
        for name in files.values():
            (out_dir / name).unlink(missing_ok=True)
        raise
    return files


def _write_image_files(result: ParseResult, out_dir: Path, stem: str, run: str | None, files: dict, *,
                       cutouts: bool, masks: bool) -> None:
    # the JSON is checked before any file is written: a result it cannot hold writes nothing
    garments = result.garments()
    if masks:
        for name in result.classes:
            garments[name]["mask"] = files[f"mask_{name}"] = f"masks/{stem}_{name}.png"
    if cutouts:
        for name in result.classes:
            garments[name]["cutout"] = files[f"cutout_{name}"] = f"cutouts/{stem}_{name}.png"
    source = str(Path(result.source).resolve()) if Path(result.source).exists() else result.source
    text = to_json({**result.to_dict(garments=False), "garments": garments, "source": source, "run": run,
                    "mask": files["mask"], "overlay": files["overlay"]}, result.source)
    png = Image.fromarray(np.asarray(result.mask), mode="L")
    png.putpalette(_png_palette())  # L → P: values stay the class ids, viewers show the palette colours
    _save_image(png, out_dir / files["mask"], "PNG", **MASK_PNG)
    _save_image(Image.fromarray(result.overlay()), out_dir / files["overlay"], "JPEG", **OVERLAY_JPEG)
    if masks and result.classes:
        (out_dir / "masks").mkdir(exist_ok=True)
        for name in result.classes:
            _save_image(Image.fromarray(result.mask(name)), out_dir / files[f"mask_{name}"], "PNG", **MASK_PNG)  # 1-bit
    if cutouts and result.classes:
        (out_dir / "cutouts").mkdir(exist_ok=True)
        full = result.full_image()  # read once; one cut-out in memory at a time (a huge photo's are large)
        for name in result.classes:
            rgba = cutout(full, result.mask(name), result.boxes[name])
            _save_image(Image.fromarray(rgba, mode="RGBA"), out_dir / files[f"cutout_{name}"], "PNG", **PHOTO_PNG)
    _write_file(out_dir / files["json"], lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


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
    import pandas as pd  # the train extra: the parser's own install writes summary.csv without it

    df = pd.DataFrame([summary_row(r) for r in results]).drop(columns=_FILE_COLUMNS)
    if file_names:
        df["file"] = [Path(f).name for f in df["file"]]
    return df
