"""Person detectors: what refinement asks "how many people are in this image (or crop)?".

:class:`MaskRCNNDetector` is the paper's (torchvision's COCO Mask R-CNN); :class:`PersonsCsvDetector`
reads the people a synthetic dataset drew, which no real detector can see. Any object with
``detect`` (and ideally ``identity``, which keys the detection cache) fits :class:`PersonDetector`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from clothparse.devices import resolve_device
from clothparse.keyed import sha256_file
from clothparse.refine.common import PERSONS_COLUMNS, Box, Grouped
from clothparse.weights import MissingWeightsError, WeightsError, as_state_dict, load_state_dict, torch_load

#: Score from which a Mask R-CNN detection counts as a person (our choice; the paper gives none).
DEFAULT_SCORE_THRESHOLD = 0.7
#: Share of a drawn person's box that must be visible for :class:`PersonsCsvDetector` to count it.
DEFAULT_MIN_VISIBLE = 0.3
#: COCO category id of "person" in torchvision's detection models.
COCO_PERSON = 1


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


def detector_identity(detector) -> dict:
    """``detector.identity()``, or its class name for a duck-typed detector without one."""
    ident = getattr(detector, "identity", None)
    if callable(ident):
        return ident()
    return {"detector": f"{type(detector).__module__}.{type(detector).__qualname__}"}


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
    ``device`` follows :func:`clothparse.devices.resolve_device` (``None``/``"auto"``, ``"cpu"``,
    ``"cuda"``, ``"cuda:N"``); asking for CUDA where there is none is a ``RuntimeError``.
    """

    def __init__(self, *, score_threshold: float = DEFAULT_SCORE_THRESHOLD, device: str | None = None,
                 batch_size: int = 8, weights: Any = "DEFAULT", download: bool = True, seed: int = 0,
                 **model_kwargs):
        import torch


        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must lie in [0, 1], got {score_threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        # Resolved before the model is built: a missing GPU fails fast, not after loading weights.
        self.device = torch.device(resolve_device(device))
        self.model_kwargs = dict(model_kwargs)
        model, self._weights_id = _build_maskrcnn(weights, download, seed, self.model_kwargs)
        # Only boxes are needed: without the mask branch torchvision skips it (same boxes, faster).
        model.roi_heads.mask_roi_pool = None
        model.roi_heads.mask_head = None
        model.roi_heads.mask_predictor = None
        self.model = model.eval().to(self.device)

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


def _build_maskrcnn(weights: Any, download: bool, seed: int, model_kwargs: dict):
    """(model, JSON-able id of its weights) for ``weights`` as :class:`MaskRCNNDetector` documents it."""
    import torch
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights, maskrcnn_resnet50_fpn

    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **model_kwargs)
        return model, {"random": seed}
    if not (isinstance(weights, MaskRCNN_ResNet50_FPN_Weights) or isinstance(weights, str)
            and weights.split(".")[-1] in MaskRCNN_ResNet50_FPN_Weights.__members__):
        return _maskrcnn_from_file(Path(weights), model_kwargs)
    enum = MaskRCNN_ResNet50_FPN_Weights.verify(weights)
    filename = os.path.basename(enum.url)
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    if not (cache_dir / filename).is_file() and not download:
        raise RuntimeError(_missing_message(enum.url, filename, cache_dir, "download=False"))
    try:
        model = maskrcnn_resnet50_fpn(weights=enum, weights_backbone=None, **model_kwargs)
    except Exception as err:  # no network, proxy, partial file: all end here
        raise RuntimeError(_missing_message(enum.url, filename, cache_dir, repr(err))) from err
    return model, {"torchvision": str(enum), "file": filename}


def _maskrcnn_from_file(path: Path, model_kwargs: dict):
    from torchvision.models.detection import maskrcnn_resnet50_fpn


    if not path.is_file():
        raise MissingWeightsError(path, "Mask R-CNN weights file not found")
    weights_id = {"file": path.name, "sha256": sha256_file(path)}
    if path.suffix == ".safetensors":
        state_dict = load_state_dict(path)
    else:
        blob = torch_load(path)
        if isinstance(blob, dict) and isinstance(blob.get("model"), dict):
            blob = blob["model"]          # a training checkpoint rather than a bare state dict
        state_dict = as_state_dict(blob, path)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **model_kwargs)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise WeightsError(path, f"not a maskrcnn_resnet50_fpn COCO state dict ({err})") from None
    return model, weights_id


def _missing_message(url: str, filename: str, cache_dir: Path, why: str) -> str:
    return (f"Mask R-CNN COCO weights are not available ({why}). Either put {filename} "
            f"(from {url}) into the torch hub cache {cache_dir} (set TORCH_HOME to move it), "
            f"or pass weights=<path to a maskrcnn_resnet50_fpn state dict .pth> "
            f"(loaded with torch.load(weights_only=True)).")


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
        # Rows are reported as in the file: +1 for the header, +1 for counting from 1.
        if coords.isna().any().any():
            row = int(np.flatnonzero(coords.isna().any(axis=1).to_numpy())[0])
            raise ValueError(f"{path}: row {row + 2} has an empty coordinate")
        bad = (df["x_max"] <= df["x_min"]) | (df["y_max"] <= df["y_min"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path}: row {row + 2} has an empty box {coords.iloc[row].tolist()}")
        self._sha = sha256_file(path)
        grouped = Grouped(df)
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
            # The tolerance keeps a person at exactly min_visible counted despite float rounding.
            keep = visible >= self.min_visible * area - 1e-9
            out.append(Detections(clipped[keep], np.ones(int(keep.sum()))))
        return out
