"""The decision for every image of one refinement, chunk by chunk, and the files it leads to.

Per image: unreadable → skipped; 0 or 1 person → kept as it is (hard-linked, rows verbatim);
more → cropped round after round (one per margin) until a crop shows exactly one person; still
crowded after the last round → a contact sheet for the review, kept (as its last crop) only
when decided ``keep``.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clothparse.datasets.base import SkipReport
from clothparse.refine.cache import DetectionCache
from clothparse.refine.common import Box, link_or_copy, load_image
from clothparse.refine.crop import crop_box, gt_span, instance_masks, semantic, write_crop
from clothparse.refine.detectors import Detections
from clothparse.refine.figures import contact_sheet
from clothparse.refine.inputs import Source
from clothparse.refine.report import REVIEW_STATUS, margin_label, record

REVIEW_COLUMNS = ["ImageId", "n_persons", "n_persons_crop", "x_min", "y_min", "x_max", "y_max", "sheet", "decision"]


@dataclass
class Crowded:
    """An image with more than one person, between cropping rounds."""

    id: str
    img: np.ndarray
    stamp: list                    # source file's [size, mtime_ns]: ties cached detections to it
    masks: list[np.ndarray] | None  # fitted to the image when train.csv's size is wrong; else None (RLEs used)
    span: tuple[int, int]          # columns of the GT mask
    n_full: int                    # persons in the whole image
    full: Detections
    box: Box | None = None         # crop of the latest round
    dets: Detections | None = None  # persons in that crop


class Refinement:
    """One run: consults ``source``, ``detector`` (through ``cache``) and the decisions; collects
    records, skips and the rows of the new tables while it writes images to ``out/train``."""

    def __init__(self, source: Source, out: Path, detector, cache: DetectionCache, margins: tuple[float, ...],
                 decision_of: dict[str, str]):
        self.source, self.out, self.detector, self.cache = source, out, detector, cache
        self.margins, self.decision_of = margins, decision_of
        self.failures = SkipReport()
        self.records: list[dict] = []
        self.as_is: list[str] = []                  # images kept unchanged (rows copied verbatim at the end)
        self.out_rows: list[pd.DataFrame] = []      # rows of cropped images
        self.out_persons: list[pd.DataFrame] = []
        self.review_rows: list[dict] = []
        self.size_fixed: list[str] = []

    def run_chunk(self, ids: list[str], pool: Executor) -> None:
        """Decide (and write) every image of ``ids``; images are read in parallel, detected in one call per round."""
        crowded = self._triage(list(zip(ids, pool.map(self._load, ids))))
        for margin in self.margins:
            if not crowded:
                break
            crowded = self._crop_round(crowded, margin)
        for c in crowded:
            self._review(c)

    def _load(self, image_id: str):
        path = self.source.root / "train" / image_id
        try:
            if Path(image_id).name != image_id or image_id in ("", ".", ".."):
                raise ValueError("ImageId is not a plain file name")
            st = path.stat()
            return load_image(path), [st.st_size, st.st_mtime_ns], None
        except Exception as err:          # unreadable, truncated, missing: reported, never fatal
            return None, None, f"{type(err).__name__}: {err}"

    def _triage(self, loaded: list[tuple[str, tuple]]) -> list[Crowded]:
        """Detect on the whole images: keep those with ≤ 1 person, return the crowded ones."""
        ok = []
        for image_id, (img, stamp, err) in loaded:
            if img is None:
                self.failures.add(image_id, f"unreadable image: {err}")
                self.records.append(record(image_id, "load_failed"))
            else:
                ok.append((image_id, img, stamp))
        full = self.cache.detect(self.detector, [(i, s, img, None) for i, img, s in ok])
        crowded = []
        for (image_id, img, stamp), dets in zip(ok, full):
            if len(dets) <= 1:
                link_or_copy(self.source.root / "train" / image_id, self.out / "train" / image_id)
                self.as_is.append(image_id)
                self.records.append(record(image_id, "no_person" if len(dets) == 0 else "single_person",
                                           n_persons=len(dets)))
                continue
            try:
                masks, span, note = gt_span(self.source.groups.rows(image_id), image_id, img)
            except ValueError as err:
                self.failures.add(image_id, f"bad annotation: {err}")
                self.records.append(record(image_id, "load_failed", n_persons=len(dets)))
                continue
            if note is not None:
                self.size_fixed.append(note)
            crowded.append(Crowded(image_id, img, stamp, masks, span, len(dets), dets, dets=dets))
        return crowded

    def _crop_round(self, crowded: list[Crowded], margin: float) -> list[Crowded]:
        """Crop with ``margin``; write the crops showing exactly one person, return the others."""
        for c in crowded:
            h, w = c.img.shape[:2]
            c.box = crop_box(*c.span, w, h, margin)
        # A crop that is the whole image asks the cache for the whole image's detections.
        reqs = [(c.id, c.stamp, c.img[:, c.box[0]:c.box[2]],
                 None if c.box == (0, 0, c.img.shape[1], c.img.shape[0]) else c.box) for c in crowded]
        for c, dets in zip(crowded, self.cache.detect(self.detector, reqs)):
            c.dets = dets
        still = []
        for c in crowded:
            if len(c.dets) == 1:
                dropped = self._write_crop(c)
                self.records.append(record(c.id, "cropped", n_persons=c.n_full, margin=margin, box=c.box,
                                           n_last=1, dropped=dropped))
            else:
                still.append(c)
        return still

    def _review(self, c: Crowded) -> None:
        """Still crowded after the last round: a contact sheet, a review row, and the decision."""
        sheet = f"review/{Path(c.id).stem}.png"
        h, w = c.img.shape[:2]
        rows = self.source.groups.rows(c.id)
        masks = c.masks if c.masks is not None else instance_masks(rows)[0]   # decoded for the picture only
        sem = semantic(rows, masks, h, w, self.source.category_map)
        contact_sheet(self.out / sheet, c.img, sem, c.full, c.box, c.dets,
                      title=f"{c.id}: {c.n_full} persons; crop x={margin_label(self.margins[-1])} % "
                            f"{c.box[0]}..{c.box[2]}: {len(c.dets)} persons")
        decision = self.decision_of.get(c.id, "")
        dropped = self._write_crop(c) if decision == "keep" else 0
        self.records.append(record(c.id, REVIEW_STATUS[decision], n_persons=c.n_full, margin=self.margins[-1],
                                   box=c.box, n_last=len(c.dets), dropped=dropped, sheet=sheet, decision=decision))
        self.review_rows.append({"ImageId": c.id, "n_persons": c.n_full, "n_persons_crop": len(c.dets),
                                 "x_min": c.box[0], "y_min": c.box[1], "x_max": c.box[2], "y_max": c.box[3],
                                 "sheet": sheet, "decision": decision})

    def _write_crop(self, c: Crowded) -> int:
        persons_of = self.source.persons_of
        rows, persons, dropped = write_crop(self.out, c.id, c.img, c.masks, c.box, self.source.groups.rows(c.id),
                                            None if persons_of is None else persons_of.rows(c.id))
        self.out_rows.append(rows)
        if persons is not None:
            self.out_persons.append(persons)
        return dropped

    def write_tables(self) -> None:
        """``train.csv``, ``persons.csv`` and ``review.csv`` of the new dataset, then the detection cache."""
        src = self.source
        # Verbatim rows of unchanged images + re-encoded rows of crops, in ImageId order (row order kept).
        pd.concat([src.groups.take(self.as_is)] + self.out_rows).sort_values("ImageId", kind="stable") \
            .to_csv(self.out / "train.csv", index=False, columns=list(src.table.columns))
        if src.persons_of is not None:
            pd.concat([src.persons_of.take(self.as_is)] + self.out_persons).sort_values("ImageId", kind="stable") \
                .to_csv(self.out / "persons.csv", index=False, columns=list(src.persons.columns))
        pd.DataFrame(self.review_rows, columns=REVIEW_COLUMNS).to_csv(self.out / "review.csv", index=False)
        self.cache.save()
