"""What every dataset reader yields, and how it reports what it skipped."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import numpy as np

from clothparse.categories import CLASSES


class Sample(NamedTuple):
    """One image with its 9-class semantic mask (0 = background, see ``clothparse.categories``)."""

    image: np.ndarray          # RGB uint8, H×W×3, at the file's resolution
    mask: np.ndarray           # uint8, H×W, values 0..8
    image_id: str
    classes: tuple[int, ...]   # clothing classes present (1..8), sorted


@dataclass
class SkipReport:
    """Images a reader left out (or repaired), each with a reason. Nothing is dropped silently."""

    entries: list[tuple[str, str]] = field(default_factory=list)   # (image_id, reason)

    def add(self, image_id: str, reason: str) -> None:
        self.entries.append((str(image_id), str(reason)))

    def __len__(self) -> int:
        return len(self.entries)

    def counts(self) -> Counter:
        """How many images per reason (the part of the reason before the first ':')."""
        return Counter(reason.split(":")[0] for _, reason in self.entries)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.entries, columns=["image_id", "reason"])

    def __str__(self) -> str:
        if not self.entries:
            return "nothing skipped"
        return "; ".join(f"{n} × {r}" for r, n in self.counts().most_common())


def normalize_index(i: int, n: int) -> int:
    """A sequence index (negative counts from the end) checked against ``n`` items."""
    i = int(i)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"index {i} out of range for {n} images")
    return i


def check_sample(image: np.ndarray, mask: np.ndarray, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` when image and mask do not fit together."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{source}: image must be H×W×3 uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{source}: mask {mask.shape} and image {image.shape[:2]} differ in size")
    if mask.size and mask.max() >= len(CLASSES):
        raise ValueError(f"{source}: mask value {int(mask.max())} is not a class id (0..{len(CLASSES) - 1})")


def file_stamps(root: str | os.PathLike, files: Iterable[str | os.PathLike] = (),
                folders: Iterable[tuple[str | os.PathLike, Callable[[str], bool] | None]] = ()) -> list[list]:
    """``[path relative to root, size, mtime_ns]`` of each existing file of ``files`` and of every regular file
    directly in each folder of ``folders`` whose name its filter keeps (None keeps all), sorted by path.

    What identifies a reader's inputs cheaply (one ``stat`` per file, no reading): a file replaced, repaired,
    touched, added or removed changes the list. Symbolic links count as the file they point to."""
    root = Path(root)
    stamps = []
    for f in files:
        path = Path(f)
        if path.is_file():
            st = path.stat()
            stamps.append([_relative(path, root), st.st_size, st.st_mtime_ns])
    for folder, keep in folders:
        if not Path(folder).is_dir():
            continue
        with os.scandir(folder) as entries:
            for e in entries:
                if (keep is None or keep(e.name)) and e.is_file():
                    st = e.stat()
                    stamps.append([_relative(Path(e.path), root), st.st_size, st.st_mtime_ns])
    return sorted(stamps)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # outside the root (a label file given by path): its absolute path
        return str(path.resolve())
