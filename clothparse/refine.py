"""The paper's multi-person cleaning of iMaterialist (section 4.1) as a reusable step.

In iMaterialist images with more than one person only one person is annotated; training on them
punishes the model for finding the others' clothes. The paper detected people with Mask R-CNN
(45,622 images, 12,188 with more than one person), cropped those images around the ground-truth
mask at full height, widened by x % of the mask's width on both sides for x = 30, 10, 0 in turn,
kept the crops showing exactly one person after each round, and inspected the rest by hand
(≈1,030), ending with 43,470 images.

:func:`refine` does the same on any dataset in the iMaterialist layout and writes a new dataset in
that layout (so reader, split, store and training run on it unchanged), a review list with
contact sheets for the manual step, and ``report.json``. Decisions from the manual review come
back as a CSV (``ImageId,decision`` with ``keep``/``drop``) on the next run.

Use::

    from clothparse.refine import MaskRCNNDetector, refine, stage_table
    report = refine(src, out, MaskRCNNDetector())            # PersonsCsvDetector(src) for synthetic data
    # look at out/review/*.png; write decisions.csv (ImageId,decision: keep/drop), e.g. from out/review.csv
    report = refine(src, out, MaskRCNNDetector(), decisions="decisions.csv")   # detections come from the cache
    stage_table(report)                                       # this run beside the paper's numbers

Choices (the paper gives none of these):

* The **GT mask** is the union of *all* instance masks of the image in ``train.csv`` (every
  category, garment parts included): that is what was annotated, so that is the person.
* A crop is ``[x_min - m, x_max + m)`` × full height with ``m = ceil(x % × mask width)``,
  clipped to the image.
* A crop is kept when the detector finds **exactly one** person in it; zero persons also
  proceed to the next round (the paper keeps only crops "with only one detected person").
* Images with 0 detected persons (product shots) and with 1 are kept unchanged, counted apart.
* A review image decided ``keep`` is kept as its crop of the **last** round (x = 0 % by default);
  ``drop`` and undecided images are dropped (undecided counted apart).
* :class:`MaskRCNNDetector` counts a person when its score is ≥ 0.7 (``DEFAULT_SCORE_THRESHOLD``).
* :class:`PersonsCsvDetector` counts a drawn person when ≥ 30 % of its box area lies inside the
  image or crop (``DEFAULT_MIN_VISIBLE``); real detectors see partial people too.
* Cropped images are re-encoded as JPEG quality 95 with 4:4:4 chroma (one more lossy
  generation); images kept as they are hard-linked (copied where links fail), never re-encoded.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from . import rle
from .datasets.base import SkipReport

__all__ = [
    "Detections", "PersonDetector", "MaskRCNNDetector", "PersonsCsvDetector", "RefineReport",
    "refine", "load_report", "stage_table", "figure_examples", "crop_box",
    "DEFAULT_MARGINS", "DEFAULT_SCORE_THRESHOLD", "DEFAULT_MIN_VISIBLE",
]

#: Bumped whenever the algorithm or the output layout changes (part of every cache key).
REFINE_VERSION = 1
#: The paper's margins (% of the GT mask's width added left and right), in the order applied.
DEFAULT_MARGINS: tuple[int, ...] = (30, 10, 0)
#: Score from which a Mask R-CNN detection counts as a person (our choice; the paper gives none).
DEFAULT_SCORE_THRESHOLD = 0.7
#: Share of a drawn person's box that must be visible for :class:`PersonsCsvDetector` to count it.
DEFAULT_MIN_VISIBLE = 0.3
#: COCO category id of "person" in torchvision's detection models.
COCO_PERSON = 1
#: JPEG settings for re-encoded crops.
JPEG_QUALITY = 95

Box = tuple[int, int, int, int]          # x_min, y_min, x_max, y_max in pixels, max exclusive

TRAIN_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId")
PERSONS_COLUMNS = ("ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated")


# --------------------------------------------------------------------------------------------
# Detectors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detections:
    """People found in one image: ``boxes`` N×4 (x_min, y_min, x_max, y_max, pixels), ``scores`` N."""

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0))


@runtime_checkable
class PersonDetector(Protocol):
    """Finds people. ``crops[i]`` is the box of the source image that ``images[i]`` was cut from
    (``None``: the whole image); detectors that look at pixels ignore ``image_ids`` and ``crops``."""

    def detect(self, images: Sequence[np.ndarray], image_ids: Sequence[str] | None = None,
               crops: Sequence[Box | None] | None = None) -> list[Detections]: ...

    def identity(self) -> dict:
        """JSON-able description of everything that changes the detections (part of the cache key)."""
        ...


class MaskRCNNDetector:
    """torchvision's ``maskrcnn_resnet50_fpn`` (COCO); a detection with label 1 (person) and
    score ≥ ``score_threshold`` is a person.

    ``weights``: ``"DEFAULT"`` (or a ``MaskRCNN_ResNet50_FPN_Weights`` member / its name) loads the
    COCO weights through torchvision, i.e. from the torch hub cache
    (``<torch.hub.get_dir()>/checkpoints/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``), downloading
    them there if missing and ``download`` is true; a path loads a state dict from that file
    (``torch.load(weights_only=True)``); ``None`` builds **random** weights (seeded) — for
    plumbing tests only, its detections are meaningless. The ImageNet backbone is never
    downloaded. ``model_kwargs`` go to the builder (e.g. ``min_size``/``max_size`` of its resize).
    """

    def __init__(self, *, score_threshold: float = DEFAULT_SCORE_THRESHOLD, device: str | None = None,
                 batch_size: int = 8, weights: Any = "DEFAULT", download: bool = True, seed: int = 0,
                 **model_kwargs):
        import torch
        from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights, maskrcnn_resnet50_fpn

        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must lie in [0, 1], got {score_threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model_kwargs = dict(model_kwargs)

        if weights is None:
            self._weights_id: Any = {"random": seed}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **model_kwargs)
        elif not (isinstance(weights, MaskRCNN_ResNet50_FPN_Weights) or isinstance(weights, str)
                  and weights.split(".")[-1] in MaskRCNN_ResNet50_FPN_Weights.__members__):
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"Mask R-CNN weights file not found: {path}")
            self._weights_id = {"file": path.name, "sha256": _sha256_file(path)}
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state_dict, dict) and "model" in state_dict and isinstance(state_dict["model"], dict):
                state_dict = state_dict["model"]
            model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **model_kwargs)
            try:
                model.load_state_dict(state_dict)
            except RuntimeError as err:
                raise ValueError(f"{path}: not a maskrcnn_resnet50_fpn COCO state dict ({err})") from None
        else:
            enum = MaskRCNN_ResNet50_FPN_Weights.verify(weights)
            filename = os.path.basename(enum.url)
            cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
            self._weights_id = {"torchvision": str(enum), "file": filename}
            if not (cache_dir / filename).is_file() and not download:
                raise RuntimeError(self._missing_message(enum.url, filename, cache_dir, "download=False"))
            try:
                model = maskrcnn_resnet50_fpn(weights=enum, weights_backbone=None, **model_kwargs)
            except Exception as err:  # no network, proxy, partial file: all end here
                raise RuntimeError(self._missing_message(enum.url, filename, cache_dir, repr(err))) from err
        # Only boxes are needed: without the mask branch torchvision skips it (same boxes, faster).
        model.roi_heads.mask_roi_pool = None
        model.roi_heads.mask_head = None
        model.roi_heads.mask_predictor = None
        self.model = model.eval().to(self.device)

    @staticmethod
    def _missing_message(url: str, filename: str, cache_dir: Path, why: str) -> str:
        return (f"Mask R-CNN COCO weights are not available ({why}). Either put {filename} "
                f"(from {url}) into the torch hub cache {cache_dir} (set TORCH_HOME to move it), "
                f"or pass weights=<path to a maskrcnn_resnet50_fpn state dict .pth> "
                f"(loaded with torch.load(weights_only=True)).")

    def identity(self) -> dict:
        return {"detector": "torchvision.maskrcnn_resnet50_fpn", "weights": self._weights_id,
                "score_threshold": self.score_threshold, "label": COCO_PERSON,
                "model_kwargs": {k: repr(v) for k, v in sorted(self.model_kwargs.items())}}

    def detect(self, images, image_ids=None, crops=None) -> list[Detections]:
        import torch

        out: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            batch = []
            for img in images[start:start + self.batch_size]:
                img = np.asarray(img)
                if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                    raise ValueError(f"images must be H×W×3 uint8 RGB, got {img.shape} {img.dtype}")
                t = torch.from_numpy(np.ascontiguousarray(img)).to(self.device)
                batch.append(t.permute(2, 0, 1).float().div_(255))   # the model normalises itself
            with torch.inference_mode():
                preds = self.model(batch)
            for p in preds:
                keep = (p["labels"] == COCO_PERSON) & (p["scores"] >= self.score_threshold)
                out.append(Detections(p["boxes"][keep].float().cpu().numpy(), p["scores"][keep].float().cpu().numpy()))
        return out


class PersonsCsvDetector:
    """Reads the people a synthetic dataset drew from ``root/persons.csv`` (real detectors cannot see
    drawn people). A person counts when ≥ ``min_visible`` of its box area lies inside the image or
    crop; boxes come back translated and clipped into the image's / crop's coordinates."""

    def __init__(self, root: str | os.PathLike, *, min_visible: float = DEFAULT_MIN_VISIBLE):
        path = Path(root) / "persons.csv"
        if not path.is_file():
            raise FileNotFoundError(f"persons.csv not found: {path}")
        if not 0.0 < min_visible <= 1.0:
            raise ValueError(f"min_visible must lie in (0, 1], got {min_visible}")
        self.path, self.min_visible = path, float(min_visible)
        df = pd.read_csv(path)
        missing = [c for c in PERSONS_COLUMNS[:6] if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} (have {list(df.columns)})")
        coords = df[["x_min", "y_min", "x_max", "y_max"]]
        if coords.isna().any().any():
            row = int(np.flatnonzero(coords.isna().any(axis=1).to_numpy())[0])
            raise ValueError(f"{path}: row {row + 2} has an empty coordinate")
        bad = (df["x_max"] <= df["x_min"]) | (df["y_max"] <= df["y_min"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path}: row {row + 2} has an empty box {coords.iloc[row].tolist()}")
        self._sha = _sha256_file(path)
        grouped = _Grouped(df)
        coords = grouped.df[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
        self._boxes = {k: coords[a:b] for k, (a, b) in grouped.spans.items()}

    def identity(self) -> dict:
        return {"detector": "persons.csv", "sha256": self._sha, "min_visible": self.min_visible}

    def detect(self, images, image_ids=None, crops=None) -> list[Detections]:
        if image_ids is None or len(image_ids) != len(images):
            raise ValueError("PersonsCsvDetector needs one image id per image")
        crops = crops if crops is not None else [None] * len(images)
        out = []
        for img, image_id, crop in zip(images, image_ids, crops):
            h, w = np.asarray(img).shape[:2]
            x0, y0 = (0, 0) if crop is None else crop[:2]
            if crop is not None and (crop[3] - crop[1], crop[2] - crop[0]) != (h, w):
                raise ValueError(f"{image_id}: crop {crop} does not match the image size {h}×{w}")
            boxes = self._boxes.get(str(image_id), np.zeros((0, 4))) - [x0, y0, x0, y0]
            clipped = np.clip(boxes, 0, [w, h, w, h])
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            visible = np.clip(clipped[:, 2] - clipped[:, 0], 0, None) * np.clip(clipped[:, 3] - clipped[:, 1], 0, None)
            keep = visible >= self.min_visible * area - 1e-9
            out.append(Detections(clipped[keep], np.ones(int(keep.sum()))))
        return out


def _detector_identity(detector) -> dict:
    ident = getattr(detector, "identity", None)
    if callable(ident):
        return ident()
    return {"detector": f"{type(detector).__module__}.{type(detector).__qualname__}"}


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hash_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def crop_box(x_min: int, x_max: int, width: int, height: int, margin: float) -> Box:
    """Full-height crop around columns ``[x_min, x_max)`` widened by ``margin`` % of that width on
    each side (rounded up to whole pixels), clipped to the image."""
    extra = math.ceil(margin * (x_max - x_min) / 100 - 1e-9)
    return (max(0, x_min - extra), 0, min(width, x_max + extra), height)


def _read_train_csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in TRAIN_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (have {list(df.columns)})")
    return df


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class _Grouped:
    """Rows of a table by ImageId, without building one DataFrame per image (45k groups are slow)."""

    def __init__(self, df: pd.DataFrame):
        ids = df["ImageId"].astype(str).to_numpy()
        order = np.argsort(ids, kind="stable")        # keeps each image's row order
        self.df = df.iloc[order].reset_index(drop=True)
        ids = ids[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
        stops = np.r_[starts[1:], len(ids)]
        self.spans = {str(ids[a]): (int(a), int(b)) for a, b in zip(starts, stops)}

    def rows(self, image_id: str) -> pd.DataFrame:
        a, b = self.spans.get(image_id, (0, 0))
        return self.df.iloc[a:b]

    def take(self, image_ids: Sequence[str]) -> pd.DataFrame:
        spans = [self.spans[i] for i in image_ids if i in self.spans]
        idx = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, int)
        return self.df.iloc[idx]


def _instance_masks(rows: pd.DataFrame, image_id: str) -> tuple[list[np.ndarray], int, int]:
    """Decode every instance of one image; raise ``ValueError`` naming the image on bad rows."""
    sizes = set(zip(rows["Height"].tolist(), rows["Width"].tolist()))
    if len(sizes) != 1:
        raise ValueError(f"rows disagree on the image size: {sorted(sizes)}")
    try:
        h, w = (int(v) for v in sizes.pop())
    except ValueError:
        raise ValueError("Height/Width are not integers") from None
    masks = []
    for i, enc in enumerate(rows["EncodedPixels"]):
        try:
            masks.append(rle.decode(enc, h, w))
        except ValueError as err:
            raise ValueError(f"instance {i}: {err}") from None
    return masks, h, w


def _read_decisions(path: Path) -> dict[str, str]:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("ImageId", "decision") if c not in df.columns]
    if missing:
        raise ValueError(f"decisions file {path}: missing columns {missing} (need ImageId,decision)")
    out: dict[str, str] = {}
    for i, (image_id, decision) in enumerate(zip(df["ImageId"], df["decision"])):
        d = decision.strip().lower()
        if d == "":
            continue              # left blank: undecided
        if d not in ("keep", "drop"):
            raise ValueError(f"decisions file {path}, row {i + 2} ({image_id}): decision must be "
                             f"'keep' or 'drop', got {decision!r}")
        if image_id in out and out[image_id] != d:
            raise ValueError(f"decisions file {path}: {image_id} is decided twice ({out[image_id]} and {d})")
        out[image_id.strip()] = d
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:           # other file system, no permission for links, ...
        shutil.copy2(src, dst)


def _semantic(rows: pd.DataFrame, masks: list[np.ndarray], h: int, w: int, category_map) -> np.ndarray:
    """9-class mask of one image with the reader's rules; without a category map every annotated
    pixel is drawn as class 1 (only used for pictures)."""
    if category_map is None:
        out = np.zeros((h, w), np.uint8)
        for m in masks:
            out[m] = 1
        return out
    from .datasets.imaterialist import semantic_mask

    instances = []
    for c, m in zip(rows["ClassId"], masks):
        cid = str(c).split("_")[0]
        # A picture, not training data: skip what the reader would reject (jumpsuit, unknown ids).
        if cid.isdigit() and int(cid) in category_map.to_class and int(cid) not in category_map.excluded_ids:
            instances.append((int(cid), m))
    return semantic_mask(instances, category_map, shape=(h, w))


def _overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    from .categories import colorize

    out = image.astype(np.float32)
    fg = mask > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colorize(mask)[fg]
    return out.astype(np.uint8)


def _contact_sheet(path: Path, image: np.ndarray, semantic: np.ndarray, full_dets: Detections,
                   box: Box, crop_dets: Detections, title: str, panel_height: int = 384) -> None:
    """PNG: the image with detections (red) and the crop (green), the annotation overlay, the crop."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    scale = panel_height / h
    panels = []

    def panel(arr, boxes, crop=None):
        im = Image.fromarray(arr).resize((max(1, round(arr.shape[1] * scale)), panel_height), Image.BILINEAR)
        draw = ImageDraw.Draw(im)
        for b in boxes:
            x0, y0, x1, y1 = [v * scale for v in b]
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 0, 0), width=2)
        if crop is not None:
            draw.rectangle([crop[0] * scale, crop[1] * scale, crop[2] * scale - 1, crop[3] * scale - 1],
                           outline=(0, 255, 0), width=2)
        return im

    panels.append(panel(image, full_dets.boxes, crop=box))
    panels.append(panel(_overlay(image, semantic), []))
    panels.append(panel(np.ascontiguousarray(image[box[1]:box[3], box[0]:box[2]]), crop_dets.boxes))
    gap, top = 8, 22
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) + 1), panel_height + top + gap),
                      (255, 255, 255))
    x = gap
    for p in panels:
        sheet.paste(p, (x, top))
        x += p.width + gap
    ImageDraw.Draw(sheet).text((gap, 4), title, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, compress_level=1)      # fast: ~1,000 sheets on the real data


class _DetectionCache:
    """Detections per (image, crop), kept in ``out_root/detections.jsonl`` so that a rerun with new
    review decisions does not run the detector again. Entries are tied to the detector's identity
    and to the source file's size and mtime."""

    def __init__(self, path: Path, detector_key: str):
        self.path, self.key = path, detector_key
        self.entries: dict[tuple, tuple[list, Detections]] = {}
        self.others: list[str] = []
        self.used: dict[tuple, tuple[list, Detections]] = {}
        self.hits = self.misses = 0
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    continue                          # a torn last line of an interrupted run
                if e.get("det") != detector_key:
                    self.others.append(line)
                    continue
                k = (e["id"], tuple(e["crop"]) if e["crop"] else None)
                self.entries[k] = (e["stamp"], Detections(np.asarray(e["boxes"]).reshape(-1, 4), e["scores"]))

    def detect(self, detector, requests: list[tuple[str, list, np.ndarray, Box | None]]) -> list[Detections]:
        """``requests``: (image_id, stamp, image, crop or None) → detections, running only the misses."""
        out: list[Detections | None] = []
        todo = []
        for i, (image_id, stamp, image, crop) in enumerate(requests):
            k = (image_id, crop)
            hit = self.entries.get(k)
            if hit is not None and hit[0] == stamp:
                self.hits += 1
                self.used[k] = hit
                out.append(hit[1])
            else:
                out.append(None)
                todo.append(i)
        if todo:
            self.misses += len(todo)
            dets = detector.detect([np.ascontiguousarray(requests[i][2]) for i in todo],
                                   [requests[i][0] for i in todo], [requests[i][3] for i in todo])
            if len(dets) != len(todo):
                raise RuntimeError(f"detector returned {len(dets)} results for {len(todo)} images")
            for i, d in zip(todo, dets):
                if not isinstance(d, Detections):
                    d = Detections(*d)
                image_id, stamp, _, crop = requests[i]
                self.used[(image_id, crop)] = (stamp, d)
                out[i] = d
        return out  # type: ignore[return-value]

    def save(self) -> None:
        lines = list(self.others)
        for (image_id, crop), (stamp, d) in self.used.items():
            lines.append(json.dumps({"det": self.key, "id": image_id, "crop": list(crop) if crop else None,
                                     "stamp": stamp, "boxes": d.boxes.tolist(), "scores": d.scores.tolist()}))
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def _margin_label(m: float) -> str:
    return f"{m:g}"


def _stages(margins: Sequence[float]) -> list[tuple[str, str, str | None]]:
    """(counts key, label, key in paper.tables()['dataset'] or None), in the order of the table."""
    return ([("total", "total images", "images_total_imaterialist2019"),
             ("no_person", "0 persons detected (kept as is)", None),
             ("single_person", "1 person detected (kept as is)", None),
             ("multi_person", "more than 1 person detected", "images_more_than_one_person_detected")]
            + [(f"kept_x{_margin_label(m)}", f"kept after cropping, x = {_margin_label(m)} %", None) for m in margins]
            + [("review", "sent to manual review", "images_manually_inspected"),
               ("review_kept", "review: kept", None),
               ("review_dropped", "review: dropped", None),
               ("undecided_dropped", "review: undecided (dropped)", None),
               ("load_failed", "unreadable image or annotation (skipped)", None),
               ("final_kept", "final kept", "images_after_cleaning")])


@dataclass
class RefineReport:
    """What :func:`refine` did: stage counts, one record per source image, skips, where things are."""

    src_root: str
    out_root: str
    key: str
    margins: tuple[float, ...]
    detector: dict
    decisions: str | None
    counts: dict[str, int]
    records: pd.DataFrame
    failures: SkipReport = field(default_factory=SkipReport)
    elapsed_s: float = 0.0
    reused: bool = False            # True: the completed output of an identical earlier run was reused
    detection_cache: dict = field(default_factory=dict)
    size_fixed: list[str] = field(default_factory=list)   # train.csv size ≠ image size, masks fitted

    @property
    def review(self) -> pd.DataFrame:
        """The review list (one row per image that was still crowded after the last round)."""
        return self.records[self.records["status"].isin(["review_kept", "review_dropped", "undecided"])]

    def to_dict(self) -> dict:
        return {"version": REFINE_VERSION, "src_root": self.src_root, "out_root": self.out_root, "key": self.key,
                "margins": list(self.margins), "detector": self.detector, "decisions": self.decisions,
                "counts": self.counts, "elapsed_s": self.elapsed_s, "detection_cache": self.detection_cache,
                "failures": self.failures.entries, "size_fixed": self.size_fixed,
                "records": json.loads(self.records.to_json(orient="records"))}

    def save(self, path: Path) -> None:
        tmp = Path(path).with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, reused: bool = False) -> "RefineReport":
        """Read ``report.json`` (or the ``report.json`` of an output folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / "report.json"
        if not path.is_file():
            raise FileNotFoundError(f"refine report not found: {path}")
        d = json.loads(path.read_text(encoding="utf-8"))
        failures = SkipReport()
        for image_id, reason in d["failures"]:
            failures.add(image_id, reason)
        return cls(src_root=d["src_root"], out_root=d["out_root"], key=d["key"], margins=tuple(d["margins"]),
                   detector=d["detector"], decisions=d["decisions"], counts=d["counts"],
                   records=pd.DataFrame(d["records"], columns=_RECORD_COLUMNS), failures=failures,
                   elapsed_s=d["elapsed_s"], reused=reused, detection_cache=d.get("detection_cache", {}),
                   size_fixed=d.get("size_fixed", []))

    def __str__(self) -> str:
        c = self.counts
        return (f"refine {self.src_root} → {self.out_root}: {c['total']} images, {c['multi_person']} with >1 person, "
                f"{c['review']} to review, {c['final_kept']} kept" + (" (reused)" if self.reused else ""))


_RECORD_COLUMNS = ["image_id", "status", "n_persons", "margin", "x_min", "x_max", "n_persons_last",
                   "instances_dropped", "sheet", "decision"]


def load_report(out_root: str | os.PathLike) -> RefineReport:
    """The :class:`RefineReport` of a finished refine output folder."""
    return RefineReport.load(out_root)


def stage_table(report: RefineReport | str | os.PathLike) -> pd.DataFrame:
    """The stage counts of a run beside the paper's numbers (section 4.1), one row per stage."""
    from .paper import tables

    if not isinstance(report, RefineReport):
        report = RefineReport.load(report)
    paper = tables()["dataset"]
    total, paper_total = report.counts["total"] or 1, paper["images_total_imaterialist2019"]
    rows = []
    for key, label, paper_key in _stages(report.margins):
        n = report.counts.get(key, 0)
        p = paper.get(paper_key) if paper_key else None
        rows.append({"stage": label, "this run": n, "this run %": round(100 * n / total, 2),
                     "paper": p, "paper %": None if p is None else round(100 * p / paper_total, 2),
                     "note": "paper: approx." if paper_key == "images_manually_inspected" else ""})
    df = pd.DataFrame(rows).set_index("stage")
    df["paper"] = df["paper"].astype("Int64")
    return df


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------
_OUTPUTS = ("train", "train.csv", "persons.csv", "label_descriptions.json", "review", "review.csv", "report.json")


def refine(src_root: str | os.PathLike, out_root: str | os.PathLike, detector: PersonDetector, *,
           margins: Sequence[float] = DEFAULT_MARGINS, decisions: str | os.PathLike | None = None,
           progress: bool = True, chunk_size: int = 64, workers: int | None = None) -> RefineReport:
    """Clean a dataset in the iMaterialist layout of images showing unannotated extra people.

    Every image of ``src_root/train.csv`` goes through ``detector``; those with more than one
    person are cropped around their GT mask (full height, ``margins`` % of the mask width added
    left and right, one round per margin) until a crop shows exactly one person; the rest form the
    review list (``out_root/review.csv`` + contact sheets ``out_root/review/*.png``). ``decisions``
    is a CSV ``ImageId,decision`` (``keep``/``drop``; a copy of ``review.csv`` with its ``decision``
    column filled works); undecided images are dropped. Writes the cleaned dataset to ``out_root``
    in the same layout, ``report.json`` and ``REFINE.json``.

    Nothing is redone when ``REFINE.json`` shows a completed run with the same key (source
    ``train.csv``, ``label_descriptions.json``, ``persons.csv``, detector identity, margins, decisions content);
    image *bytes* are not part of the key: delete ``REFINE.json`` after changing images. Detections
    are cached in ``out_root/detections.jsonl`` so that new decisions do not rerun the detector.
    """
    t0 = time.perf_counter()
    src, out = Path(src_root), Path(out_root)
    train_csv = src / "train.csv"
    if not train_csv.is_file():
        raise FileNotFoundError(f"train.csv not found: {train_csv}")
    if not (src / "train").is_dir():
        raise FileNotFoundError(f"image folder not found: {src / 'train'}")
    if out.resolve() == src.resolve() or out.resolve().is_relative_to((src / "train").resolve()):
        raise ValueError(f"out_root {out} must not be src_root or lie inside its image folder")
    margins = tuple(float(m) for m in margins)
    if not margins or any(not math.isfinite(m) or m < 0 for m in margins):
        raise ValueError(f"margins must be non-negative percentages, at least one; got {margins}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")

    decisions_path = Path(decisions) if decisions is not None else None
    decision_of: dict[str, str] = {}
    decisions_sha = None
    if decisions_path is not None:
        if not decisions_path.is_file():
            raise FileNotFoundError(f"decisions file not found: {decisions_path}")
        if decisions_path.resolve() == (out / "review.csv").resolve():
            raise ValueError(f"{decisions_path} is rewritten by every run: copy it elsewhere "
                             f"(e.g. {out / 'decisions.csv'}) and pass the copy")
        decision_of = _read_decisions(decisions_path)
        decisions_sha = _sha256_file(decisions_path)

    labels_path, persons_path = src / "label_descriptions.json", src / "persons.csv"
    ident = _detector_identity(detector)
    detector_key = _hash_json({"version": REFINE_VERSION, "detector": ident})
    key = _hash_json({"version": REFINE_VERSION, "train_csv": _sha256_file(train_csv),
                      "labels": _sha256_file(labels_path) if labels_path.is_file() else None,
                      "persons": _sha256_file(persons_path) if persons_path.is_file() else None,
                      "detector": ident, "margins": margins, "decisions": decisions_sha})

    state_path = out / "REFINE.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("key") == key and state.get("complete") and (out / "report.json").is_file():
            return RefineReport.load(out, reused=True)
    elif out.is_dir() and ((out / "train.csv").exists() or (out / "train").exists()):
        raise FileExistsError(f"{out} holds a dataset that refine did not write (no REFINE.json); "
                              f"choose an empty or new out_root")

    # Read and check all inputs before touching out_root.
    table = _read_train_csv(train_csv)
    groups = _Grouped(table)
    image_ids = sorted(groups.spans)
    persons = pd.read_csv(persons_path) if persons_path.is_file() else None
    if persons is not None and "ImageId" not in persons.columns:
        raise ValueError(f"{persons_path}: no ImageId column (have {list(persons.columns)})")
    persons_of = _Grouped(persons) if persons is not None else None
    category_map = None
    if labels_path.is_file():
        from .categories import imaterialist_category_map

        category_map = imaterialist_category_map(labels_path)

    out.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"key": key, "complete": False}), encoding="utf-8")
    for name in _OUTPUTS:                  # only our own outputs: decisions files etc. stay
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    (out / "train").mkdir()
    if labels_path.is_file():
        shutil.copy2(labels_path, out / "label_descriptions.json")

    cache = _DetectionCache(out / "detections.jsonl", detector_key)
    failures = SkipReport()
    records: list[dict] = []
    as_is: list[str] = []                   # images kept unchanged (rows copied verbatim at the end)
    out_rows: list[pd.DataFrame] = []       # rows of cropped images
    out_persons: list[pd.DataFrame] = []
    review_rows: list[dict] = []
    size_fixed: list[str] = []

    def load(image_id):
        path = src / "train" / image_id
        try:
            if Path(image_id).name != image_id or image_id in ("", ".", ".."):
                raise ValueError("ImageId is not a plain file name")
            st = path.stat()
            return _load_image(path), [st.st_size, st.st_mtime_ns], None
        except Exception as err:          # unreadable, truncated, missing: reported, never fatal
            return None, None, f"{type(err).__name__}: {err}"

    def write_crop(c: dict) -> int:
        people = None if persons_of is None else persons_of.rows(c["id"])
        return _write_crop(out, c, groups.rows(c["id"]), people, out_rows, out_persons)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(image_ids), desc="refine", unit="img")
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(image_ids), chunk_size):
            ids = image_ids[start:start + chunk_size]
            loaded = list(pool.map(load, ids))
            ok = []
            for image_id, (img, stamp, err) in zip(ids, loaded):
                if img is None:
                    failures.add(image_id, f"unreadable image: {err}")
                    records.append(_record(image_id, "load_failed"))
                else:
                    ok.append((image_id, img, stamp))
            full = cache.detect(detector, [(i, s, img, None) for i, img, s in ok])
            crowded = []
            for (image_id, img, stamp), dets in zip(ok, full):
                if len(dets) <= 1:
                    _link_or_copy(src / "train" / image_id, out / "train" / image_id)
                    as_is.append(image_id)
                    records.append(_record(image_id, "no_person" if len(dets) == 0 else "single_person",
                                           n_persons=len(dets)))
                    continue
                try:
                    masks, h, w = _instance_masks(groups.rows(image_id), image_id)
                except ValueError as err:
                    failures.add(image_id, f"bad annotation: {err}")
                    records.append(_record(image_id, "load_failed", n_persons=len(dets)))
                    continue
                if img.shape[:2] != (h, w):
                    # Two real Kaggle images carry a wrong size in train.csv; like the reader, fit the
                    # masks to the image (nearest neighbour); the crop's rows then state the true size.
                    from .datasets.imaterialist import resize_nearest

                    size_fixed.append(f"{image_id}: csv {h}×{w}, image {img.shape[0]}×{img.shape[1]}")
                    h, w = img.shape[:2]
                    masks = [resize_nearest(m, h, w) for m in masks]
                gt = np.zeros((h, w), bool)
                for m in masks:
                    gt |= m
                cols = np.flatnonzero(gt.any(axis=0))
                # No annotated pixel: nothing to crop around, the whole image goes to review.
                span = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, w)
                crowded.append({"id": image_id, "img": img, "stamp": stamp, "masks": masks, "span": span,
                                "n_full": len(dets), "full": dets, "box": None, "dets": dets})
            for margin in margins:
                if not crowded:
                    break
                for c in crowded:
                    h, w = c["img"].shape[:2]
                    c["box"] = crop_box(*c["span"], w, h, margin)
                reqs = [(c["id"], c["stamp"], c["img"][:, c["box"][0]:c["box"][2]],
                         None if c["box"] == (0, 0, c["img"].shape[1], c["img"].shape[0]) else c["box"])
                        for c in crowded]
                for c, dets in zip(crowded, cache.detect(detector, reqs)):
                    c["dets"] = dets
                still = []
                for c in crowded:
                    if len(c["dets"]) == 1:
                        dropped = write_crop(c)
                        records.append(_record(c["id"], "cropped", n_persons=c["n_full"], margin=margin,
                                               box=c["box"], n_last=1, dropped=dropped))
                    else:
                        still.append(c)
                crowded = still
            for c in crowded:
                stem = Path(c["id"]).stem
                sheet = f"review/{stem}.png"
                h, w = c["img"].shape[:2]
                semantic = _semantic(groups.rows(c["id"]), c["masks"], h, w, category_map)
                _contact_sheet(out / sheet, c["img"], semantic, c["full"], c["box"], c["dets"],
                               title=f"{c['id']}: {c['n_full']} persons; crop x={_margin_label(margins[-1])} % "
                                     f"{c['box'][0]}..{c['box'][2]}: {len(c['dets'])} persons")
                decision = decision_of.get(c["id"], "")
                dropped = 0
                if decision == "keep":
                    dropped = write_crop(c)
                status = {"keep": "review_kept", "drop": "review_dropped", "": "undecided"}[decision]
                records.append(_record(c["id"], status, n_persons=c["n_full"], margin=margins[-1], box=c["box"],
                                       n_last=len(c["dets"]), dropped=dropped, sheet=sheet, decision=decision))
                review_rows.append({"ImageId": c["id"], "n_persons": c["n_full"], "n_persons_crop": len(c["dets"]),
                                    "x_min": c["box"][0], "y_min": c["box"][1], "x_max": c["box"][2],
                                    "y_max": c["box"][3], "sheet": sheet, "decision": decision})
            if bar is not None:
                bar.update(len(ids))
    if bar is not None:
        bar.close()

    # Verbatim rows of unchanged images + re-encoded rows of crops, in ImageId order (row order kept).
    pd.concat([groups.take(as_is)] + out_rows).sort_values("ImageId", kind="stable") \
        .to_csv(out / "train.csv", index=False, columns=list(table.columns))
    if persons_of is not None:
        pd.concat([persons_of.take(as_is)] + out_persons).sort_values("ImageId", kind="stable") \
            .to_csv(out / "persons.csv", index=False, columns=list(persons.columns))
    pd.DataFrame(review_rows, columns=["ImageId", "n_persons", "n_persons_crop", "x_min", "y_min", "x_max", "y_max",
                                       "sheet", "decision"]).to_csv(out / "review.csv", index=False)
    cache.save()

    rec = pd.DataFrame(records, columns=_RECORD_COLUMNS).sort_values("image_id", ignore_index=True)
    status = rec["status"].value_counts()
    counts = {"total": len(image_ids), "no_person": int(status.get("no_person", 0)),
              "single_person": int(status.get("single_person", 0)),
              "multi_person": int((rec["n_persons"] > 1).sum())}
    for m in margins:
        counts[f"kept_x{_margin_label(m)}"] = int(((rec["status"] == "cropped") & (rec["margin"] == m)).sum())
    counts.update(review=len(review_rows), review_kept=int(status.get("review_kept", 0)),
                  review_dropped=int(status.get("review_dropped", 0)),
                  undecided_dropped=int(status.get("undecided", 0)),
                  load_failed=int(status.get("load_failed", 0)),
                  final_kept=int(rec["status"].isin(["no_person", "single_person", "cropped", "review_kept"]).sum()),
                  instances_dropped=int(rec["instances_dropped"].fillna(0).sum()),
                  decisions_unused=len(set(decision_of) - {r["ImageId"] for r in review_rows}),
                  size_fixed=len(size_fixed))
    report = RefineReport(src_root=str(src), out_root=str(out), key=key, margins=margins, detector=ident,
                          decisions=str(decisions_path) if decisions_path else None, counts=counts, records=rec,
                          failures=failures, elapsed_s=round(time.perf_counter() - t0, 3),
                          detection_cache={"hits": cache.hits, "misses": cache.misses}, size_fixed=size_fixed)
    report.save(out / "report.json")
    state_path.write_text(json.dumps({"key": key, "complete": True, "version": REFINE_VERSION,
                                      "counts": counts}, indent=1), encoding="utf-8")
    return report


def _record(image_id, status, *, n_persons=None, margin=None, box=None, n_last=None, dropped=0, sheet=None,
            decision=None) -> dict:
    return {"image_id": image_id, "status": status, "n_persons": n_persons, "margin": margin,
            "x_min": None if box is None else box[0], "x_max": None if box is None else box[2],
            "n_persons_last": n_last, "instances_dropped": dropped, "sheet": sheet, "decision": decision}


def _write_crop(out: Path, c: dict, rows: pd.DataFrame, persons: pd.DataFrame | None,
                out_rows: list, out_persons: list) -> int:
    """Write the crop ``c['box']`` of one image; returns how many instances vanished in it."""
    from PIL import Image

    x0, _, x1, _ = c["box"]
    Image.fromarray(np.ascontiguousarray(c["img"][:, x0:x1])).save(
        out / "train" / c["id"], format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    new = rows.copy()
    encoded = [rle.encode(m[:, x0:x1]) for m in c["masks"]]
    keep = np.array([e != "" for e in encoded], dtype=bool)
    new["EncodedPixels"] = encoded
    new["Width"] = str(x1 - x0)
    new["Height"] = str(c["img"].shape[0])
    out_rows.append(new[keep])
    if persons is not None:
        # Translated, not clipped: a person cut by the crop keeps its true extent, so the visible
        # share stays known (x_min may be negative). People wholly outside the crop are dropped.
        p = persons.copy()
        p["x_min"] -= x0
        p["x_max"] -= x0
        out_persons.append(p[(p["x_max"] > 0) & (p["x_min"] < x1 - x0)])
    return int((~keep).sum())


# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------
def figure_examples(report: RefineReport | str | os.PathLike, n: int = 3, *, image_ids: Sequence[str] | None = None):
    """The paper's Figure 2 for this run: a multi-person image with its detections, its annotation
    (one person only), and the crop refine kept. Needs the source dataset still in place."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if not isinstance(report, RefineReport):
        report = RefineReport.load(report)
    src, out = Path(report.src_root), Path(report.out_root)
    rec = report.records
    chosen = rec[rec["status"].isin(["cropped", "review_kept"])]
    if image_ids is not None:
        chosen = chosen[chosen["image_id"].isin(list(image_ids))]
    chosen = chosen.sort_values(["n_persons", "image_id"], ascending=[False, True]).head(n)
    if chosen.empty:
        raise ValueError(f"{out}: refine kept no cropped image to show")
    category_map = None
    if (src / "label_descriptions.json").is_file():
        from .categories import imaterialist_category_map

        category_map = imaterialist_category_map(src / "label_descriptions.json")
    detections = {}
    cache_path = out / "detections.jsonl"
    if cache_path.is_file():   # the full-image detections of this run, for the red boxes
        cache = _DetectionCache(cache_path, _hash_json({"version": REFINE_VERSION, "detector": report.detector}))
        detections = {k[0]: v[1] for k, v in cache.entries.items() if k[1] is None}
    src_rows = _read_train_csv(src / "train.csv")
    out_rows = _read_train_csv(out / "train.csv")
    sizes = src_rows.drop_duplicates("ImageId").set_index("ImageId").loc[chosen["image_id"], ["Height", "Width"]]
    aspect = float(np.median(sizes["Height"].astype(float) / sizes["Width"].astype(float)))
    fig, axes = plt.subplots(len(chosen), 3, figsize=(9, len(chosen) * (3 * aspect + 0.4)), squeeze=False)
    for row, r in zip(axes, chosen.itertuples()):
        image = _load_image(src / "train" / r.image_id)
        rows = src_rows[src_rows["ImageId"] == r.image_id]
        masks, h, w = _instance_masks(rows, r.image_id)
        crop = _load_image(out / "train" / r.image_id)
        crows = out_rows[out_rows["ImageId"] == r.image_id]
        cmasks, ch, cw = _instance_masks(crows, r.image_id)
        row[0].imshow(image)
        row[0].set_title(f"input: {int(r.n_persons)} persons detected", fontsize=9)
        dets = detections.get(r.image_id)
        for x0, y0, x1, y1 in ([] if dets is None else dets.boxes):
            row[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1))
        row[0].add_patch(Rectangle((r.x_min - 0.5, -0.5), r.x_max - r.x_min, h, fill=False, ec="lime", lw=1.5,
                                   ls="--"))
        row[1].imshow(_overlay(image, _semantic(rows, masks, h, w, category_map)))
        row[1].set_title("annotation (one person only)", fontsize=9)
        # The crop at the input's scale and place, so what was cut away is visible.
        row[2].imshow(_overlay(crop, _semantic(crows, cmasks, ch, cw, category_map)),
                      extent=(r.x_min - 0.5, r.x_min + cw - 0.5, ch - 0.5, -0.5))
        row[2].set_title(f"refined: crop x = {r.margin:g} %", fontsize=9)
        for ax in row:
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.set_axis_off()
    fig.tight_layout()
    return fig
