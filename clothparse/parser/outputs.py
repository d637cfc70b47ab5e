"""What the parser writes and shows: per-image files, ``summary.csv``, the notebook's table and figures, and
:func:`parse_files` (``clothparse parse``: files, folders and globs in, an output folder out).

Per parsed image: ``<stem>_mask.png`` (a palette PNG whose pixel values are the class ids),
``<stem>_overlay.png`` (the photo with the garments tinted) and ``<stem>.json`` (:meth:`ParseResult.to_dict`
— per garment its box, pixel count and Kaggle-convention RLE mask under ``garments`` — plus the run and the
names of the files written). Per garment found, on request: ``cutouts/<stem>_<class>.png`` (RGBA, the photo
at its original resolution cropped to the garment's box, transparent outside the garment) and
``masks/<stem>_<class>.png`` (1-bit, the photo's size, white on the garment). Class names have no ``_``, so
these names never collide. ``summary.csv`` has a row per input (:data:`SUMMARY_COLUMNS`), a failed one
included, with its error, and the files written (paths relative to the output folder). ``classes`` limits
every output to those garments (:meth:`ParseResult.only`).
"""
from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clothparse.categories import CLASSES, CLOTHING, NUM_CLASSES, PALETTE
from clothparse.images import empty_folders, expand_inputs
from clothparse.parser.garments import cutout, parse_classes

if TYPE_CHECKING:
    from clothparse.parser.parse import ParseFailure, ParseResult

__all__ = ["SUMMARY_COLUMNS", "ParsedFiles", "write_outputs", "summary_row", "summary_table", "figure_results",
           "figure_cutouts", "prior_text", "parse_files"]

SUMMARY_COLUMNS = ["file", "status", "error", "height", "width", "classes",
                   *[f"colour_{c}" for c in CLOTHING], "mask", "overlay", "json",
                   *[f"cutout_{c}" for c in CLOTHING], *[f"mask_{c}" for c in CLOTHING]]
#: the columns naming files written, left out of :func:`summary_table`
_FILE_COLUMNS = ["mask", "overlay", "json", *[f"cutout_{c}" for c in CLOTHING], *[f"mask_{c}" for c in CLOTHING]]


def _png_palette() -> list[int]:
    flat = [v for rgb in PALETTE for v in rgb]
    return flat + [0] * (768 - len(flat))


def write_outputs(result: ParseResult, out_dir: Path, stem: str, run: str | None = None, *,
                  cutouts: bool = False, masks: bool = False) -> dict[str, str]:
    """``<stem>_mask.png`` (palette PNG, pixel value = class), ``<stem>_overlay.png`` and ``<stem>.json``;
    with ``cutouts`` / ``masks`` also each garment's ``cutouts/<stem>_<class>.png`` / ``masks/<stem>_<class>.png``.
    Returns the files written by :data:`SUMMARY_COLUMNS` name (``cutout_<class>``, ``mask_<class>``)."""
    from PIL import Image

    from clothparse.keyed import write_json

    out_dir = Path(out_dir)
    files = {"mask": f"{stem}_mask.png", "overlay": f"{stem}_overlay.png", "json": f"{stem}.json"}
    png = Image.fromarray(np.asarray(result.mask), mode="L")
    png.putpalette(_png_palette())  # L → P: values stay the class ids, viewers show the palette colours
    png.save(out_dir / files["mask"], optimize=True)
    Image.fromarray(result.overlay()).save(out_dir / files["overlay"])
    garments = result.garments()
    if masks:
        (out_dir / "masks").mkdir(exist_ok=True)
        for name in result.classes:
            garments[name]["mask"] = files[f"mask_{name}"] = f"masks/{stem}_{name}.png"
            Image.fromarray(result.mask(name)).save(out_dir / files[f"mask_{name}"], optimize=True)  # 1-bit
    if cutouts and result.classes:
        (out_dir / "cutouts").mkdir(exist_ok=True)
        full = result.full_image()  # read once; one cut-out in memory at a time (a huge photo's are large)
        for name in result.classes:
            garments[name]["cutout"] = files[f"cutout_{name}"] = f"cutouts/{stem}_{name}.png"
            rgba = cutout(full, result.mask(name), result.boxes[name])
            Image.fromarray(rgba, mode="RGBA").save(out_dir / files[f"cutout_{name}"])
    source = str(Path(result.source).resolve()) if Path(result.source).exists() else result.source
    write_json(out_dir / files["json"], {**result.to_dict(garments=False), "garments": garments, "source": source,
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

    df = pd.DataFrame([summary_row(r) for r in results]).drop(columns=_FILE_COLUMNS)
    if file_names:
        df["file"] = [Path(f).name for f in df["file"]]
    return df


def _swatches(ax, res: ParseResult) -> None:
    """One line per present garment: its palette colour, its name and its dominant colours with their shares."""
    from matplotlib.patches import Rectangle

    ax.axis("off")
    ax.set_xlim(0, 1)
    ax.set_ylim(max(len(res.classes), 4), 0)  # the same row height in every panel
    for i, garment in enumerate(res.classes):
        gc = res.colours.get(garment)
        ax.add_patch(Rectangle((0, i + 0.15), 0.08, 0.7, color=np.asarray(PALETTE[CLASSES.index(garment)]) / 255))
        if gc is None or not gc.colours:
            ax.text(0.12, i + 0.5, f"{garment}: too small", va="center", fontsize=8)
            continue
        ax.text(0.12, i + 0.5, garment, va="center", fontsize=8)
        x = 0.36
        for colour in gc.colours:
            width = 0.6 * colour.share
            ax.add_patch(Rectangle((x, i + 0.15), width, 0.7, color=colour.hex, ec="0.6", lw=0.5))
            ax.text(x + width / 2, i + 0.5, f"{colour.name}\n{colour.share:.0%}", ha="center", va="center",
                    fontsize=6, color="white" if colour.lab[0] < 55 else "black")
            x += width + 0.01
    if not res.classes:
        ax.text(0, 0.5, "no garment found", va="center", fontsize=8)


def figure_results(results: list[ParseResult], compare: list[ParseResult] | None = None,
                   labels: tuple[str, str] = ("parsed", "compared"), height: float = 3.0):
    """One row per image: the photo, its overlay (and ``compare``'s overlay), and colour swatches per garment."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

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
        _swatches(axes[row, -1], res)
    handles = [Patch(color=np.asarray(PALETTE[i]) / 255, label=CLASSES[i]) for i in range(1, NUM_CLASSES)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _garment_label(res: ParseResult, garment: str) -> str:
    colour = res.main_colours.get(garment)
    return f"{garment} · {colour}" if colour else f"{garment} · too small"


def figure_cutouts(results: list[ParseResult], max_garments: int = 4, height: float = 3.0):
    """One row per image: the photo, then its largest garments' cut-outs (at most ``max_garments``, at the
    original resolution) on a light checkerboard, each titled with its class and main colour name."""
    import matplotlib.pyplot as plt

    from clothparse.parser.garments import on_checkerboard

    picks = [sorted(r.classes, key=lambda c: -r.fractions[c])[:max_garments] for r in results]
    cols = 1 + max(1, max(len(p) for p in picks))
    fig, axes = plt.subplots(len(results), cols, squeeze=False, figsize=(cols * height * 0.75, len(results) * height))
    for row, (res, garments) in enumerate(zip(results, picks)):
        axes[row, 0].imshow(res.image)
        axes[row, 0].set_title(res.source.rsplit("/", 1)[-1], fontsize=9)
        for ax, (garment, rgba) in zip(axes[row, 1:], res.cutouts(garments).items()):
            ax.imshow(on_checkerboard(rgba))
            ax.set_title(_garment_label(res, garment), fontsize=9)
        if not garments:
            axes[row, 1].text(0.5, 0.5, "no garment found", ha="center", va="center", fontsize=9)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def prior_text(prior: str | None = None, present: str | None = None, absent: str | None = None) -> str | None:
    """A prior string and lists of present / absent classes as one prior string ("skirt,-dress")."""
    parts = [prior or ""]
    parts += [c.strip() for c in (present or "").split(",")]
    parts += ["-" + c.strip() for c in (absent or "").split(",") if c.strip()]
    return ",".join(p for p in parts if p) or None


@dataclass
class ParsedFiles:
    """What :func:`parse_files` did: the output folder, the inputs, how many were written and how many
    failed, and the folders given that held no image."""

    out_dir: Path
    files: list[str]
    failed: int
    written: int = 0
    empty_folders: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.written == len(self.files)


def _output_folder(out: str | Path) -> Path:
    """``out`` as a folder path; an existing file there is an error naming it (checked before the model loads,
    the folder made after)."""
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"the output folder {out_dir} is an existing file")
    return out_dir


def _write_summary(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def parse_files(paths: Iterable[str | Path], run: str | Path, out: str | Path, *, prior: str | None = None,
                present: str | None = None, absent: str | None = None, hard: bool = False,
                device: str | None = None, batch_size: int = 8, progress: bool = True,
                classes: str | Iterable[str] | None = None, cutouts: bool = False,
                masks: bool = False, workers: int | None = None, tta: bool = False) -> ParsedFiles:
    """Parse files, folders (their images) and globs with the run folder ``run``; write each image's mask,
    overlay and JSON (with ``cutouts`` / ``masks`` each garment's cut-out / mask too), and ``summary.csv``,
    into ``out``; ``classes`` ("pants,skirt") limits every output to those garments; ``workers``: the
    :class:`~clothparse.parser.parse.Parser`'s threads that read photos and finish results beside the network;
    ``tta``: its
    mirror averaging. An
    unreadable input is reported on stderr, listed as failed in the CSV, and the others go on; so is a folder
    with no image, when other inputs have some. No image at all is a ``FileNotFoundError``; an unknown class,
    a batch size below 1 or an ``out`` that is a file a ``ValueError`` / ``OSError`` before anything runs."""
    from tqdm.auto import tqdm

    from clothparse.parser.parse import Parser, check_batch_size

    paths = list(paths)
    keep = parse_classes(classes)
    check_batch_size(batch_size)
    files, empty = expand_inputs(paths), empty_folders(paths)
    if not files:
        raise FileNotFoundError(f"no images in {' '.join(map(str, paths))}")
    out_dir = _output_folder(out)
    for folder in empty:
        print(f"clothparse parse: warning: no images in the folder {folder}", file=sys.stderr)
    parser = Parser(run=run, device=device, batch_size=batch_size, workers=workers, tta=tta)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, failed, written = [], 0, 0
    with tqdm(total=len(files), unit="img", desc="parse", disable=not progress or None) as bar:
        results = parser.iter_parse(files, prior=prior_text(prior, present, absent), hard=hard, errors="report")
        for f, stem, res in zip(files, _stems(files), results):
            if res.ok:
                res = res.only(keep)
                rows.append(summary_row(res, f, write_outputs(res, out_dir, stem, run=parser.run,
                                                              cutouts=cutouts, masks=masks)))
                written += 1
            else:
                failed += 1
                rows.append(summary_row(res, f))
                tqdm.write(f"clothparse parse: skipped {res.source}: {res.error}", file=sys.stderr)
            bar.update(1)
    _write_summary(out_dir / "summary.csv", rows)
    return ParsedFiles(out_dir, files, failed, written, empty)
