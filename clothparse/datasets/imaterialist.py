"""Reader for the iMaterialist (Fashion) 2019 layout: ``train.csv`` + ``train/*.jpg`` + ``label_descriptions.json``.

The same layout is written by the synthetic generator and by the refinement step, so one reader serves all three.

Instance masks → one 9-class semantic mask (:func:`semantic_mask`)
    * Only *kept garments* paint pixels: categories the paper's merge maps to a clothing class
      (top, overtop, pants, shorts, skirt, dress, shoe, bag).
    * Garment parts, closures and decorations (``CategoryMap.part_ids``: sleeve, collar, zipper, …) never
      overwrite a garment. They would map to background anyway, so they are simply not painted.
    * Other categories (hat, belt, glasses, umbrella, …) map to background and never erase a garment pixel:
      they are not painted either, so a belt lying over a dress leaves the dress intact.
    * Where two kept garments overlap, the smaller instance (fewer pixels in its own mask) lies on top, because
      the smaller item is usually the one in front (a bag held in front of a coat).
      On equal pixel counts the instance listed first (the lower CSV row) lies on top.
    * Images with an excluded category (jumpsuit) have no valid mask: the reader drops them and
      :func:`semantic_mask` refuses them.

What is skipped, repaired, or raised
    * ``.skipped`` (:class:`~clothparse.datasets.base.SkipReport`), one reason per image, checked at construction
      (reason keys in front of the ``:``): ``jumpsuit``; ``malformed`` (bad ClassId, Height or Width, rows of one
      image disagreeing on the size); ``unknown-category`` (a category id absent from label_descriptions.json);
      ``bad-rle`` (reason names the CSV line and the RLE error); ``missing-image``; ``unreadable-image`` (the JPEG
      header cannot be read, only with ``check_sizes=True``). CSV line numbers count the header as line 1.
    * ``.repaired``: images whose Height/Width in the CSV disagree with the image file (two real Kaggle images do).
      Their masks are decoded at the CSV size and resized (nearest neighbour) to the image size, reason
      ``size-fixed: csv H×W, image h×w``. With ``check_sizes=True`` (default) the JPEG headers are read at
      construction, so the report is complete before any item is read; otherwise entries appear as items are read.
    * ``[i]`` raises ``ValueError`` naming the file when a JPEG cannot be decoded.

Orientation: EXIF orientation is *not* applied. The masks are taken to be in the stored pixel orientation of the
JPEG, whose size the CSV's Height/Width give; transposing the image would misalign them.

``classes_of(i)`` is read from the CSV (no RLE or JPEG decode): the classes of the image's non-empty kept-garment
rows. It equals ``Sample.classes`` (computed from the mask) except when a garment instance is entirely hidden under
garments lying on top of it (smaller ones, or an identical earlier row); ``classes_of(i, exact=True)`` decodes the
masks and is always equal (for a size-fixed image: up to a class the nearest-neighbour resize might drop).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from clothparse import rle
from clothparse.categories import CategoryMap, imaterialist_category_map
from clothparse.datasets.base import Sample, SkipReport, check_sample, file_stamps, normalize_index
from clothparse.masks import classes_present

__all__ = ["IMaterialist", "semantic_mask", "resize_nearest", "input_stamps", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS: tuple[str, ...] = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId")
#: Larger CSV sizes are treated as malformed (a typo there would otherwise allocate gigabytes per decode).
MAX_PIXELS: int = 2**30


def semantic_mask(instances: Sequence[tuple[int, np.ndarray]], category_map: CategoryMap,
                  shape: tuple[int, int] | None = None) -> np.ndarray:
    """Merge instance masks ``[(category_id, bool H×W), …]`` into one uint8 mask of class ids 0..8.

    The rule (see the module docstring): only kept garments paint; the smaller instance lies on top; on equal
    pixel counts the earlier instance in ``instances`` lies on top. ``shape`` is needed when ``instances`` is empty.
    Raises ``ValueError`` on an unknown or excluded category id, or on masks of differing shape.
    """
    if shape is None:
        if not instances:
            raise ValueError("semantic_mask: no instances and no shape given")
        shape = np.shape(instances[0][1])
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError(f"semantic_mask: shape must be 2-D, got {shape}")
    out = np.zeros(shape, dtype=np.uint8)
    painted: list[tuple[int, int, int, np.ndarray]] = []  # (pixels, order, class, mask)
    for order, (cid, mask) in enumerate(instances):
        cid = int(cid)
        if cid not in category_map.to_class:
            raise ValueError(f"semantic_mask: instance {order} has unknown category id {cid}")
        if cid in category_map.excluded_ids:
            raise ValueError(f"semantic_mask: instance {order} has excluded category {cid} "
                             f"({category_map.names.get(cid, '?')}); the image has no valid mask")
        mask = np.asarray(mask)
        if mask.shape != shape:
            raise ValueError(f"semantic_mask: instance {order} has shape {mask.shape}, expected {shape}")
        cls = category_map.to_class[cid]
        if cls == 0 or cid in category_map.part_ids:
            continue  # background / part / accessory: never paints, never erases a garment
        mask = mask.astype(bool, copy=False)
        painted.append((int(np.count_nonzero(mask)), order, cls, mask))
    # Paint from the bottom of the stack up: largest first, and among equals the later instance first,
    # so that the smallest (then the earliest) instance is painted last, i.e. lies on top.
    painted.sort(key=lambda t: (-t[0], -t[1]))
    for _, _, cls, mask in painted:
        out[mask] = cls
    return out


def resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a label mask (source pixel = the one whose centre is nearest)."""
    h, w = mask.shape[:2]
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def input_stamps(root: str | Path, csv_name: str = "train.csv", image_dir: str = "train",
                 label_descriptions: str = "label_descriptions.json") -> list[list]:
    """``[relative path, size, mtime_ns]`` of every file the reader reads under ``root`` (the CSV, the label
    file and every file of the image folder), so a replaced or repaired photo changes what identifies the data."""
    root = Path(root)
    return file_stamps(root, [root / csv_name, root / label_descriptions], [(root / image_dir, None)])


@dataclass(frozen=True)
class _Columns:
    """``train.csv`` parsed column-wise, one entry per CSV row."""

    line: np.ndarray            # CSV line number (header = 1)
    class_id: pd.Series         # ClassId as written (stripped)
    good_class_id: np.ndarray   # ClassId is '<int>[_<int>...]'
    cat: np.ndarray             # category id (-1 when unreadable)
    known: np.ndarray           # category in label_descriptions.json
    excluded: np.ndarray        # category excluded (jumpsuit)
    cls: np.ndarray             # class 1..8 the row paints (0: background, part or accessory)
    height: np.ndarray          # CSV size (0 where malformed)
    width: np.ndarray
    good_size: np.ndarray
    raw_height: pd.Series       # Height / Width as written, for the messages
    raw_width: pd.Series
    encoded: np.ndarray         # RLE strings (object)
    nonempty: np.ndarray        # RLE has runs


class _Kept(NamedTuple):
    image_id: str
    size: tuple[int, int]        # CSV size
    file_size: tuple[int, int]   # JPEG header size, (-1, -1) when not read
    garment_rows: np.ndarray     # its kept-garment CSV rows
    classes: tuple[int, ...]     # from the CSV


class IMaterialist:
    """Kaggle iMaterialist 2019 layout → :class:`Sample` items in sorted ImageId order.

    ``root``: folder with ``csv_name``, ``image_dir`` and ``label_descriptions.json``. ``label_descriptions``:
    a path, a parsed dict or a :class:`CategoryMap` (default ``root/label_descriptions.json``).
    ``validate_rle``: parse every row's RLE at construction and skip images with a malformed one (about a
    minute for the full Kaggle CSV); when False, a malformed kept-garment RLE raises ``ValueError`` on decode and
    other rows are never parsed. ``check_sizes``: read each JPEG header at construction (see ``.repaired``).
    """

    def __init__(self, root: str | Path, label_descriptions: str | Path | dict | CategoryMap | None = None,
                 csv_name: str = "train.csv", image_dir: str = "train", *, validate_rle: bool = True,
                 check_sizes: bool = True) -> None:
        self.root = Path(root)
        self.csv_path = self.root / csv_name
        self.image_dir = self.root / image_dir
        if isinstance(label_descriptions, CategoryMap):
            self.category_map = label_descriptions
        else:
            self.category_map = imaterialist_category_map(
                self.root / "label_descriptions.json" if label_descriptions is None else label_descriptions)
        if not self.csv_path.is_file():
            raise FileNotFoundError(f"iMaterialist annotations not found: {self.csv_path}")
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"iMaterialist image folder not found: {self.image_dir}")
        self.skipped = SkipReport()
        self.repaired = SkipReport()
        self._repaired_ids: set[str] = set()
        self._build(self._read_csv(), validate_rle=validate_rle, check_sizes=check_sizes)

    # --- construction ------------------------------------------------------------------------------------------
    def _read_csv(self) -> pd.DataFrame:
        try:
            # Everything as text: bad values are reported per row instead of failing the whole read.
            df = pd.read_csv(self.csv_path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.csv_path}: cannot parse CSV ({err})") from err
        except pd.errors.EmptyDataError:
            raise ValueError(f"{self.csv_path}: empty file (expected a header {','.join(REQUIRED_COLUMNS)})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{self.csv_path}: missing columns {missing}; found {list(df.columns)}")
        return df

    def _build(self, df: pd.DataFrame, *, validate_rle: bool, check_sizes: bool) -> None:
        c = self._columns(df)
        groups, valid_rows = self._group_images(df, c.line)
        on_disk = set(os.listdir(self.image_dir))
        kept: list[_Kept] = []
        for image_id, pos in groups.items():
            rows = valid_rows[pos]
            reason, size, file_size = self._judge(image_id, rows, c, on_disk, validate_rle=validate_rle,
                                                  check_sizes=check_sizes)
            if reason is not None:
                self.skipped.add(image_id, reason)
                continue
            if file_size != (-1, -1) and file_size != size:
                self._note_repair(image_id, size, file_size)
            garment = rows[c.cls[rows] > 0]
            classes = tuple(sorted({int(k) for k in c.cls[garment[c.nonempty[garment]]]}))
            kept.append(_Kept(image_id, size, file_size, garment, classes))
        self._keep(kept, c)

    def _columns(self, df: pd.DataFrame) -> _Columns:
        """Every row's fields parsed at once (bad values marked, not raised: they are judged per image)."""
        cmap = self.category_map
        class_id = df["ClassId"].astype(str).str.strip()
        good_class_id = class_id.str.fullmatch(r"\d+(_\d+)*").fillna(False).to_numpy(dtype=bool)
        cat_f = pd.to_numeric(class_id.str.split("_").str[0].where(good_class_id), errors="coerce")
        cat_f = cat_f.to_numpy(dtype=float)
        # Ids beyond int32 cannot be real categories; -1 keeps the int cast safe and marks them unknown.
        cat = np.where(np.isfinite(cat_f) & (cat_f < 2**31), cat_f, -1).astype(np.int64)
        height = pd.to_numeric(df["Height"], errors="coerce").to_numpy(dtype=float)
        width = pd.to_numeric(df["Width"], errors="coerce").to_numpy(dtype=float)
        good_size = (np.isfinite(height) & np.isfinite(width) & (height >= 1) & (width >= 1)
                     & (height == np.round(height)) & (width == np.round(width))
                     & (height * width <= MAX_PIXELS))
        known = np.isin(cat, np.fromiter(cmap.to_class, dtype=np.int64)) & (cat >= 0)
        excluded = np.isin(cat, np.fromiter(cmap.excluded_ids, dtype=np.int64)) if cmap.excluded_ids else \
            np.zeros(len(df), bool)
        lut = np.zeros(max(cmap.to_class, default=0) + 1, dtype=np.int64)
        for cid, cls in cmap.to_class.items():
            lut[cid] = 0 if cid in cmap.part_ids else cls
        encoded = df["EncodedPixels"].astype(str).to_numpy(dtype=object)
        return _Columns(
            line=np.arange(len(df), dtype=np.int64) + 2,  # header is line 1 (no multi-line fields in this layout)
            class_id=class_id, good_class_id=good_class_id, cat=cat, known=known, excluded=excluded,
            cls=np.where(known, lut[np.clip(cat, 0, len(lut) - 1)], 0),
            height=np.where(good_size, height, 0).astype(np.int64),
            width=np.where(good_size, width, 0).astype(np.int64), good_size=good_size,
            raw_height=df["Height"], raw_width=df["Width"], encoded=encoded,
            nonempty=np.fromiter((bool(s.strip()) for s in encoded), dtype=bool, count=len(encoded)))

    def _group_images(self, df: pd.DataFrame, line: np.ndarray) -> tuple[dict, np.ndarray]:
        """``({image_id: positions into the rows with an ImageId}, those rows)`` in sorted ImageId order;
        rows without an ImageId are skipped, naming their line."""
        image_col = df["ImageId"].astype(str).str.strip()
        no_id = (image_col == "").to_numpy()
        for r in np.flatnonzero(no_id):
            self.skipped.add("", f"malformed: {self.csv_path.name} line {line[r]} has no ImageId")
        groups = df.index.to_series()[~no_id].groupby(image_col[~no_id], sort=True).indices
        return groups, np.flatnonzero(~no_id)

    def _judge(self, image_id: str, rows: np.ndarray, c: _Columns, on_disk: set[str], *, validate_rle: bool,
               check_sizes: bool) -> tuple[str | None, tuple[int, int], tuple[int, int]]:
        """``(skip reason or None, CSV size, file size or (-1, -1) when not read)`` of one image."""
        reason = self._check_rows(rows, c)
        size = (int(c.height[rows[0]]), int(c.width[rows[0]])) if reason is None else (0, 0)
        if reason is None and validate_rle:
            reason = self._check_rle(rows, c, size[0] * size[1])
        if reason is None and image_id not in on_disk:
            reason = f"missing-image: {self.image_dir / image_id}"
        file_size = (-1, -1)
        if reason is None and check_sizes:
            try:
                with Image.open(self.image_dir / image_id) as im:
                    file_size = (int(im.height), int(im.width))
            except (OSError, ValueError, Image.DecompressionBombError) as err:
                reason = f"unreadable-image: {self.image_dir / image_id}: {err}"
        return reason, size, file_size

    def _check_rle(self, rows: np.ndarray, c: _Columns, n_pixels: int) -> str | None:
        for r in rows:
            try:
                rle.parse_runs(c.encoded[r], n_pixels)
            except ValueError as err:
                return f"bad-rle: {self.csv_path.name} line {c.line[r]}: {err}"
        return None

    def _keep(self, kept: list[_Kept], c: _Columns) -> None:
        """Keep only what masks need (kept-garment rows), contiguous per image: parts and accessories are never
        painted, and dropping their RLE strings saves most of the memory of the full CSV."""
        order = np.concatenate([k.garment_rows for k in kept]) if kept else np.zeros(0, dtype=np.int64)
        self.image_ids: list[str] = [k.image_id for k in kept]
        self._sizes = np.asarray([k.size for k in kept], dtype=np.int64).reshape(-1, 2)
        self._file_sizes = np.asarray([k.file_size for k in kept], dtype=np.int64).reshape(-1, 2)
        self._offsets = np.concatenate([[0], np.cumsum([len(k.garment_rows) for k in kept], dtype=np.int64)])
        self._rle = c.encoded[order]
        self._cat = c.cat[order]
        self._line = c.line[order]
        self._classes = [k.classes for k in kept]
        self._exact_classes: dict[int, tuple[int, ...]] = {}

    def _check_rows(self, rows: np.ndarray, c: _Columns) -> str | None:
        """The reason to skip an image, judged from its CSV rows alone (None = keep)."""
        csv = self.csv_path.name
        line, cat, height, width = c.line, c.cat, c.height, c.width
        if c.excluded[rows].any():
            r = rows[np.argmax(c.excluded[rows])]
            return f"jumpsuit: {csv} line {line[r]} has category {cat[r]} ({self.category_map.names.get(int(cat[r]))})"
        if not c.good_class_id[rows].all():
            r = rows[np.argmin(c.good_class_id[rows])]
            return f"malformed: {csv} line {line[r]} has ClassId {c.class_id.iat[r]!r} (expected '<int>[_<int>...]')"
        if not c.known[rows].all():
            r = rows[np.argmin(c.known[rows])]
            return (f"unknown-category: {csv} line {line[r]} has category {cat[r]}, "
                    f"not in label_descriptions.json")
        if not c.good_size[rows].all():
            r = rows[np.argmin(c.good_size[rows])]
            return (f"malformed: {csv} line {line[r]} has Height {c.raw_height.iat[r]!r}, "
                    f"Width {c.raw_width.iat[r]!r} (expected positive integers, at most {MAX_PIXELS} pixels)")
        if (height[rows] != height[rows[0]]).any() or (width[rows] != width[rows[0]]).any():
            r = rows[np.argmax((height[rows] != height[rows[0]]) | (width[rows] != width[rows[0]]))]
            return (f"malformed: {csv} line {line[r]} gives size {height[r]}×{width[r]}, line {line[rows[0]]} "
                    f"gives {height[rows[0]]}×{width[rows[0]]} for the same image")
        return None

    def _note_repair(self, image_id: str, csv_size: tuple[int, int], file_size: tuple[int, int]) -> None:
        if image_id in self._repaired_ids:
            return
        self._repaired_ids.add(image_id)
        self.repaired.add(image_id, f"size-fixed: csv {csv_size[0]}×{csv_size[1]}, "
                                    f"image {file_size[0]}×{file_size[1]}; mask resized (nearest)")

    def take(self, indices: Sequence[int]) -> "IMaterialist":
        """The images ``indices`` (in that order) as a reader of their own, holding only their rows.

        What a store worker needs (:func:`clothparse.datasets.store.build_store` sends each worker its chunks this way):
        pickled, it is the size of its images' RLE strings, not of the whole CSV's. ``take(idx)[j]`` equals
        ``self[idx[j]]``; its ``skipped`` and ``repaired`` reports start empty."""
        idx = np.asarray([self._index(i) for i in indices], dtype=np.int64)
        starts, stops = self._offsets[idx], self._offsets[idx + 1]
        rows = (np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)]) if len(idx)
                else np.zeros(0, dtype=np.int64))
        part = copy.copy(self)
        part.image_ids = [self.image_ids[i] for i in idx]
        part._sizes, part._file_sizes = self._sizes[idx].reshape(-1, 2), self._file_sizes[idx].reshape(-1, 2)
        part._offsets = np.concatenate([[0], np.cumsum(stops - starts)]).astype(np.int64)
        part._rle, part._cat, part._line = self._rle[rows], self._cat[rows], self._line[rows]
        part._classes = [self._classes[i] for i in idx]
        part._exact_classes = {j: self._exact_classes[i] for j, i in enumerate(idx.tolist())
                               if i in self._exact_classes}
        part.skipped, part.repaired, part._repaired_ids = SkipReport(), SkipReport(), set()
        return part

    # --- access --------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.image_ids)

    def _index(self, i: int) -> int:
        return normalize_index(i, len(self.image_ids))

    def instances(self, i: int) -> list[tuple[int, np.ndarray]]:
        """The image's kept-garment instances ``(category_id, bool mask)`` at the CSV size, in CSV row order."""
        i = self._index(i)
        h, w = (int(v) for v in self._sizes[i])
        out = []
        for k in range(self._offsets[i], self._offsets[i + 1]):
            try:
                out.append((int(self._cat[k]), rle.decode(self._rle[k], h, w)))
            except ValueError as err:
                raise ValueError(f"{self.csv_path} line {self._line[k]} ({self.image_ids[i]}): {err}") from None
        return out

    def _mask_at_csv_size(self, i: int) -> np.ndarray:
        return semantic_mask(self.instances(i), self.category_map, shape=tuple(self._sizes[i]))

    def mask_of(self, i: int) -> np.ndarray:
        """The 9-class mask (no JPEG decode). At the image file's size when known (``check_sizes=True``)."""
        i = self._index(i)
        mask = self._mask_at_csv_size(i)
        fh, fw = (int(v) for v in self._file_sizes[i])
        if fh > 0 and (fh, fw) != mask.shape:
            mask = resize_nearest(mask, fh, fw)
        return mask

    def classes_of(self, i: int, exact: bool = False) -> tuple[int, ...]:
        """Clothing classes (1..8) present. From the CSV by default; ``exact=True`` decodes the mask (cached)."""
        i = self._index(i)
        if not exact:
            return self._classes[i]
        if i not in self._exact_classes:
            self._exact_classes[i] = classes_present(self._mask_at_csv_size(i))
        return self._exact_classes[i]

    @property
    def classes(self) -> list[tuple[int, ...]]:
        """``classes_of(i)`` for every image (from the CSV)."""
        return list(self._classes)

    def __getitem__(self, i: int) -> Sample:
        i = self._index(i)
        image_id = self.image_ids[i]
        path = self.image_dir / image_id
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise ValueError(f"{path}: cannot decode image ({err})") from err
        mask = self._mask_at_csv_size(i)
        if mask.shape != image.shape[:2]:
            self._note_repair(image_id, mask.shape, image.shape[:2])
            mask = resize_nearest(mask, *image.shape[:2])
        check_sample(image, mask, str(path))
        return Sample(image=image, mask=mask, image_id=image_id, classes=classes_present(mask))

    def __repr__(self) -> str:
        return (f"IMaterialist({str(self.root)!r}: {len(self)} images; skipped: {self.skipped}; "
                f"repaired: {len(self.repaired)})")
