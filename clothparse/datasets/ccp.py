"""Reader for Clothing Co-Parsing (CCP).

Layout: ``photos/NNNN.jpg`` + ``annotations/pixel-level/NNNN.mat`` (variable ``groundtruth``) + ``label_list.mat``.

Only photos with a pixel-level annotation are items (CCP's other photos carry image-level tags only; ignored).
CCP's 59 labels are mapped onto the paper's 9 classes *by name* through :data:`clothparse.categories.CCP_MERGE`,
resolved against the names in ``label_list.mat``; a name the merge expects but the file lacks is an error.
Labels the merge does not name (skin, hair, belt, …, and label 0 "null") are background.

Skipped at construction (``.skipped``, reason key before the ``:``):
    * ``romper`` (or any name in ``exclude``): CCP's jumpsuit, excluded as the paper excludes jumpsuits;
    * ``suit`` with ``suit="exclude"`` (default, :data:`~clothparse.categories.CCP_SUIT_POLICY`): one label covers
      jacket and trousers, which cannot be split into overtop and pants. ``suit="background"`` keeps such images and
      maps suit pixels to background instead;
    * ``missing-image``, ``bad-annotation`` (unreadable .mat, no ``groundtruth``, not 2-D, a label value outside
      ``label_list.mat``), ``size-mismatch`` (annotation and photo differ in size; each names the file).

An image with both an excluded label and suit is counted under the excluded label. Images are RGB at file
resolution, EXIF orientation not applied (the annotations are in the stored pixel orientation).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
from PIL import Image

from clothparse.categories import CCP_EXCLUDED, CCP_MERGE, CCP_SUIT_POLICY, CLASSES
from clothparse.datasets.base import Sample, SkipReport, check_sample, file_stamps, normalize_index
from clothparse.masks import classes_present

__all__ = ["CCP", "read_label_names", "ccp_lookup", "input_stamps", "SUIT_POLICIES"]

SUIT_POLICIES: tuple[str, ...] = ("exclude", "background")
_SUIT = "suit"


def read_label_names(path: str | Path) -> list[str]:
    """The label names of ``label_list.mat`` (index = label value; 0 is "null")."""
    path = Path(path)
    try:
        data = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: cannot read MATLAB file ({err})") from err
    if "label_list" not in data:
        raise ValueError(f"{path}: no variable 'label_list' (found {[k for k in data if not k.startswith('__')]})")
    cells = np.asarray(data["label_list"]).ravel()
    names = []
    for k, cell in enumerate(cells):
        cell = np.asarray(cell).ravel()
        if cell.size != 1 or not isinstance(cell[0], str):
            raise ValueError(f"{path}: label_list entry {k} is not a string ({cell!r})")
        names.append(cell[0].strip())
    return names


def ccp_lookup(names: Sequence[str]) -> np.ndarray:
    """A 256-entry uint8 table: CCP label value → class 0..8 (by name, via ``CCP_MERGE``; unnamed → 0).

    Raises ``ValueError`` when a name of ``CCP_MERGE`` is missing from ``names``.
    """
    index = {n.lower(): k for k, n in enumerate(names)}
    lut = np.zeros(256, dtype=np.uint8)
    missing = []
    for cls, cat_names in CCP_MERGE.items():
        for n in cat_names:
            if n.lower() in index:
                lut[index[n.lower()]] = CLASSES.index(cls)
            else:
                missing.append(f"{n} ({cls})")
    if missing:
        raise ValueError(f"label_list.mat lacks labels that CCP_MERGE maps: {missing}; known: {list(names)}")
    return lut


def input_stamps(root: str | Path) -> list[list]:
    """``[relative path, size, mtime_ns]`` of every file the reader reads under ``root``: ``label_list.mat``,
    the pixel-level annotations and the photos they annotate (so a replaced or repaired photo changes the list)."""
    root = Path(root)
    annotations = root / "annotations" / "pixel-level"
    stems = {n[:-4] for n in os.listdir(annotations) if n.endswith(".mat")} if annotations.is_dir() else set()
    return file_stamps(root, [root / "label_list.mat"],
                       [(annotations, lambda n: n.endswith(".mat")),
                        (root / "photos", lambda n: n.endswith(".jpg") and n[:-4] in stems)])


class CCP:
    """Clothing Co-Parsing → :class:`Sample` items (sorted by file name), labels merged to the 9 classes.

    ``exclude``: label names whose images are dropped (default romper). ``suit``: ``"exclude"`` or
    ``"background"``. ``image_ids``: optional subset of photo names (``"0001.jpg"``) to read, e.g. for tests.
    """

    def __init__(self, root: str | Path, exclude: Sequence[str] = CCP_EXCLUDED, suit: str = CCP_SUIT_POLICY,
                 *, image_ids: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.photo_dir = self.root / "photos"
        self.annotation_dir = self.root / "annotations" / "pixel-level"
        for p in (self.photo_dir, self.annotation_dir):
            if not p.is_dir():
                raise FileNotFoundError(f"CCP folder not found: {p}")
        if suit not in SUIT_POLICIES:
            raise ValueError(f"suit must be one of {SUIT_POLICIES}, got {suit!r}")
        self.label_names = read_label_names(self.root / "label_list.mat")
        self.suit = suit
        self.lut = ccp_lookup(self.label_names)
        index = {n.lower(): k for k, n in enumerate(self.label_names)}
        unknown = [n for n in [*exclude, _SUIT] if n.lower() not in index]
        if unknown:
            raise ValueError(f"{self.root / 'label_list.mat'} lacks labels {unknown}; known: {self.label_names}")
        self.exclude = tuple(exclude)
        self._excluded_values = {index[n.lower()]: n for n in self.exclude}
        self._suit_value = index[_SUIT]
        # suit is not in CCP_MERGE, so with suit="background" the lookup already maps it to 0.
        self.skipped = SkipReport()

        stems = sorted(p.stem for p in self.annotation_dir.glob("*.mat"))
        if image_ids is not None:
            wanted = {Path(i).stem for i in image_ids}
            absent = sorted(wanted - set(stems))
            if absent:
                raise ValueError(f"no pixel-level annotation in {self.annotation_dir} for {absent}")
            stems = [s for s in stems if s in wanted]
        self.image_ids: list[str] = []
        self._classes: list[tuple[int, ...]] = []
        for stem in stems:
            image_id = f"{stem}.jpg"
            reason, classes = self._inspect(stem)
            if reason is not None:
                self.skipped.add(image_id, reason)
                continue
            self.image_ids.append(image_id)
            self._classes.append(classes)

    def _load_labels(self, stem: str) -> np.ndarray:
        """The raw CCP label map of one image; ``ValueError`` naming the file when it is unusable."""
        path = self.annotation_dir / f"{stem}.mat"
        try:
            data = scipy.io.loadmat(str(path))
        except (OSError, ValueError, TypeError, NotImplementedError) as err:
            raise ValueError(f"{path}: cannot read MATLAB file ({err})") from err
        if "groundtruth" not in data:
            raise ValueError(f"{path}: no variable 'groundtruth'")
        labels = np.asarray(data["groundtruth"])
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{path}: groundtruth must be a 2-D integer array, got {labels.shape} {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise ValueError(f"{path}: label value {int(labels.max())} outside label_list.mat "
                             f"(0..{len(self.label_names) - 1})")
        return labels.astype(np.uint8, copy=False)

    def _inspect(self, stem: str) -> tuple[str | None, tuple[int, ...]]:
        """(skip reason or None, classes present after mapping) — reads the .mat and only the JPEG header."""
        photo = self.photo_dir / f"{stem}.jpg"
        if not photo.is_file():
            return f"missing-image: {photo}", ()
        try:
            labels = self._load_labels(stem)
        except ValueError as err:
            return f"bad-annotation: {err}", ()
        counts = np.bincount(labels.ravel(), minlength=len(self.label_names))
        for value, name in self._excluded_values.items():
            if counts[value]:
                return f"{name}: label {name!r} covers {counts[value]} px in {stem}.mat", ()
        if self.suit == "exclude" and counts[self._suit_value]:
            return f"suit: label 'suit' covers {counts[self._suit_value]} px in {stem}.mat", ()
        try:
            with Image.open(photo) as im:
                size = (im.height, im.width)
        except (OSError, ValueError) as err:
            return f"unreadable-image: {photo}: {err}", ()
        if size != labels.shape:
            return (f"size-mismatch: {stem}.mat is {labels.shape[0]}×{labels.shape[1]}, "
                    f"{photo.name} is {size[0]}×{size[1]}"), ()
        present = np.flatnonzero(counts)
        return None, tuple(sorted({int(c) for c in self.lut[present] if c > 0}))

    def __len__(self) -> int:
        return len(self.image_ids)

    def _stem(self, i: int) -> str:
        return Path(self.image_ids[normalize_index(i, len(self.image_ids))]).stem

    def labels_of(self, i: int) -> np.ndarray:
        """The raw CCP label map (values index ``label_names``)."""
        return self._load_labels(self._stem(i))

    def mask_of(self, i: int) -> np.ndarray:
        """The 9-class mask (no JPEG decode)."""
        return self.lut[self.labels_of(i)]

    def classes_of(self, i: int) -> tuple[int, ...]:
        """Clothing classes (1..8) present, computed at construction."""
        self._stem(i)
        return self._classes[int(i)]

    @property
    def classes(self) -> list[tuple[int, ...]]:
        return list(self._classes)

    def __getitem__(self, i: int) -> Sample:
        stem = self._stem(i)
        path = self.photo_dir / f"{stem}.jpg"
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot decode image ({err})") from err
        mask = self.lut[self._load_labels(stem)]
        check_sample(image, mask, str(path))
        return Sample(image=image, mask=mask, image_id=f"{stem}.jpg", classes=classes_present(mask))

    def __repr__(self) -> str:
        return f"CCP({str(self.root)!r}: {len(self)} images; skipped: {self.skipped})"
