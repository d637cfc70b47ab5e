"""The detection cache: detections per (image, crop) kept in ``out_root/detections.jsonl``.

A rerun with new review decisions (or after an interruption) then does not run the detector
again. Entries are tied to the detector's identity and to the source file's size and mtime.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from clothparse.refine.common import REFINE_VERSION, Box, hash_json
from clothparse.refine.detectors import Detections

CACHE_FILE = "detections.jsonl"


def detector_key(identity: dict) -> str:
    """The cache key of a detector's detections (its identity and the refinement version)."""
    return hash_json({"version": REFINE_VERSION, "detector": identity})


class DetectionCache:
    """``entries``: what the file held for this detector; ``used``: what this run asked for (what
    :meth:`save` keeps, so entries of images gone from the source do not pile up); ``others``:
    lines of other detectors, kept verbatim."""

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
                    d = Detections(*d)                # a detector may answer (boxes, scores) pairs
                image_id, stamp, _, crop = requests[i]
                self.used[(image_id, crop)] = (stamp, d)
                out[i] = d
        return out  # type: ignore[return-value]

    def full_image(self) -> dict[str, Detections]:
        """Detections of whole images (no crop) the file holds, by image id."""
        return {k[0]: v[1] for k, v in self.entries.items() if k[1] is None}

    def save(self) -> None:
        lines = list(self.others)
        for (image_id, crop), (stamp, d) in self.used.items():
            lines.append(json.dumps({"det": self.key, "id": image_id, "crop": list(crop) if crop else None,
                                     "stamp": stamp, "boxes": d.boxes.tolist(), "scores": d.scores.tolist()}))
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, self.path)
