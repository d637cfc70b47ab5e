"""``clothparse parse``: files, folders and globs in, an output folder out — each image's mask, overlay and JSON
(:func:`clothparse.parser.outputs.write_outputs`, with cut-outs and garment masks on request) and
``summary.csv``, a row per input (:data:`~clothparse.parser.outputs.SUMMARY_COLUMNS`), a failed one included.
"""
from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from clothparse.images import empty_folders, expand_inputs
from clothparse.parser.garments import parse_classes
from clothparse.parser.outputs import SUMMARY_COLUMNS, summary_row, write_outputs
from clothparse.parser.parse import Parser, check_batch_size

__all__ = ["ParsedFiles", "ParseInterrupted", "parse_files", "prior_text"]

#: what an earlier parse wrote into an output folder: never read back as photos (``--out`` inside an input folder)
_OUTPUT_SUFFIXES = ("_mask.png", "_overlay.jpg", "_overlay.png")  # .png: earlier versions' overlays
_OUTPUT_FOLDERS = ("cutouts", "masks")


class ParseInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`parse_files`, after ``summary.csv`` was written for the images done; ``str()`` says
    how many and where."""


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
    #: earlier outputs found among the inputs (``--out`` inside an input folder) and left out
    skipped_outputs: int = 0

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


def _stems(files: list[str]) -> list[str]:
    """Output names: the file stem, made unique with -2, -3… (a.jpg and a.png, or one name in two folders).
    A suffixed name is never another input's own stem (``same.jpg`` twice and ``same-2.jpg``: ``same``,
    ``same-3``, ``same-2``), and names differ in more than case (a case-insensitive file system)."""
    stems = [Path(f).stem or "image" for f in files]
    taken = {s.lower() for s in stems}
    used: set[str] = set()
    out = []
    for stem in stems:
        name, n = stem, 1
        while name.lower() in used or (n > 1 and name.lower() in taken):
            n += 1
            name = f"{stem}-{n}"
        used.add(name.lower())
        out.append(name)
    return out


def _is_output(file: str, out_dir: Path) -> bool:
    """``file`` is what a parse wrote into ``out_dir``: a mask or overlay in it, or anything in its cutouts/ or
    masks/ folder."""
    path, out = Path(file).resolve(), out_dir.resolve()
    if path.parent == out:
        return path.name.lower().endswith(_OUTPUT_SUFFIXES)
    return any(path.is_relative_to(out / folder) for folder in _OUTPUT_FOLDERS)


def _write_summary(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.part")  # an interrupted write never leaves half a summary
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
    a batch size below 1, ``classes`` that name no class or an ``out`` that is a file a ``ValueError`` /
    ``OSError`` before anything runs. The masks, overlays, cut-outs and garment masks an earlier parse wrote
    into ``out`` are left out of the inputs (``out`` inside an input folder), and counted.

    Each file is written under a temporary name and renamed when whole. Ctrl-C writes ``summary.csv`` for the
    images done and raises :class:`ParseInterrupted`: the folder holds complete files only."""
    paths = list(paths)
    keep = parse_classes(classes)
    if classes is not None and keep is None:
        raise ValueError(f"classes {classes!r} names no class; give e.g. pants,skirt (or no classes for every "
                         "garment)")
    check_batch_size(batch_size)
    out_dir = _output_folder(out)
    files, empty = expand_inputs(paths), empty_folders(paths)
    inputs = [f for f in files if not _is_output(f, out_dir)]
    skipped = len(files) - len(inputs)
    if skipped:
        print(f"clothparse parse: warning: skipped {skipped} file{'s' if skipped > 1 else ''} that an earlier parse "
              f"wrote into the output folder {out_dir}", file=sys.stderr)
    files = inputs
    if not files:
        raise FileNotFoundError(f"no images in {' '.join(map(str, paths))}"
                                + (f" ({skipped} earlier outputs of clothparse parse skipped)" if skipped else ""))
    for folder in empty:
        print(f"clothparse parse: warning: no images in the folder {folder}", file=sys.stderr)
    parser = Parser(run=run, device=device, batch_size=batch_size, workers=workers, tta=tta)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, failed, written = [], 0, 0
    results = parser.iter_parse(files, prior=prior_text(prior, present, absent), hard=hard, errors="report")
    with tqdm(total=len(files), unit="img", desc="parse", disable=not progress or None) as bar, closing(results):
        try:
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
        except KeyboardInterrupt:
            _write_summary(out_dir / "summary.csv", rows)
            raise ParseInterrupted(f"interrupted after {written} of {len(files)} images; "
                                   f"{out_dir / 'summary.csv'} lists what was written") from None
    _write_summary(out_dir / "summary.csv", rows)
    return ParsedFiles(out_dir, files, failed, written, empty, skipped)
