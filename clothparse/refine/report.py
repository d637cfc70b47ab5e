"""What a refinement did: one record per source image, the stage counts, ``report.json``.

:func:`stage_table` puts a run's stage counts beside the paper's numbers (section 4.1).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from clothparse.datasets.base import SkipReport
from clothparse.evaluation.paper import tables
from clothparse.refine.common import REFINE_VERSION, Box

RECORD_COLUMNS = ["image_id", "status", "n_persons", "margin", "x_min", "x_max", "n_persons_last",
                  "instances_dropped", "sheet", "decision"]
#: Record statuses of the images that end up in the refined dataset.
KEPT_STATUSES = ("no_person", "single_person", "cropped", "review_kept")
#: Record statuses of the review list (still crowded after the last round), by decision.
REVIEW_STATUS = {"keep": "review_kept", "drop": "review_dropped", "": "undecided"}


def margin_label(m: float) -> str:
    return f"{m:g}"


def record(image_id: str, status: str, *, n_persons=None, margin=None, box: Box | None = None, n_last=None,
           dropped=0, sheet=None, decision=None) -> dict:
    """One row of :attr:`RefineReport.records`."""
    return {"image_id": image_id, "status": status, "n_persons": n_persons, "margin": margin,
            "x_min": None if box is None else box[0], "x_max": None if box is None else box[2],
            "n_persons_last": n_last, "instances_dropped": dropped, "sheet": sheet, "decision": decision}


def stages(margins: Sequence[float]) -> list[tuple[str, str, str | None]]:
    """(counts key, label, key in paper.tables()['dataset'] or None), in the order of the table."""
    return ([("total", "total images", "images_total_imaterialist2019"),
             ("no_person", "0 persons detected (kept as is)", None),
             ("single_person", "1 person detected (kept as is)", None),
             ("multi_person", "more than 1 person detected", "images_more_than_one_person_detected")]
            + [(f"kept_x{margin_label(m)}", f"kept after cropping, x = {margin_label(m)} %", None) for m in margins]
            + [("review", "sent to manual review", "images_manually_inspected"),
               ("review_kept", "review: kept", None),
               ("review_dropped", "review: dropped", None),
               ("undecided_dropped", "review: undecided (dropped)", None),
               ("load_failed", "unreadable image or annotation (skipped)", None),
               ("final_kept", "final kept", "images_after_cleaning")])


def stage_counts(rec: pd.DataFrame, n_images: int, margins: Sequence[float], n_review: int,
                 decisions_unused: int, n_size_fixed: int) -> dict[str, int]:
    """The counts of :attr:`RefineReport.counts` from the records (keys in the order report.json shows)."""
    status = rec["status"].value_counts()
    counts = {"total": n_images, "no_person": int(status.get("no_person", 0)),
              "single_person": int(status.get("single_person", 0)),
              "multi_person": int((rec["n_persons"] > 1).sum())}
    for m in margins:
        counts[f"kept_x{margin_label(m)}"] = int(((rec["status"] == "cropped") & (rec["margin"] == m)).sum())
    counts.update(review=n_review, review_kept=int(status.get("review_kept", 0)),
                  review_dropped=int(status.get("review_dropped", 0)),
                  undecided_dropped=int(status.get("undecided", 0)),
                  load_failed=int(status.get("load_failed", 0)),
                  final_kept=int(rec["status"].isin(list(KEPT_STATUSES)).sum()),
                  instances_dropped=int(rec["instances_dropped"].fillna(0).sum()),
                  decisions_unused=decisions_unused, size_fixed=n_size_fixed)
    return counts


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
        return self.records[self.records["status"].isin(list(REVIEW_STATUS.values()))]

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
                   records=pd.DataFrame(d["records"], columns=RECORD_COLUMNS), failures=failures,
                   elapsed_s=d["elapsed_s"], reused=reused, detection_cache=d.get("detection_cache", {}),
                   size_fixed=d.get("size_fixed", []))

    def __str__(self) -> str:
        c = self.counts
        return (f"refine {self.src_root} → {self.out_root}: {c['total']} images, {c['multi_person']} with >1 person, "
                f"{c['review']} to review, {c['final_kept']} kept" + (" (reused)" if self.reused else ""))


def load_report(out_root: str | os.PathLike) -> RefineReport:
    """The :class:`RefineReport` of a finished refine output folder."""
    return RefineReport.load(out_root)


def stage_table(report: RefineReport | str | os.PathLike) -> pd.DataFrame:
    """The stage counts of a run beside the paper's numbers (section 4.1), one row per stage."""
    if not isinstance(report, RefineReport):
        report = RefineReport.load(report)
    paper = tables()["dataset"]
    total, paper_total = report.counts["total"] or 1, paper["images_total_imaterialist2019"]
    rows = []
    for key, label, paper_key in stages(report.margins):
        n = report.counts.get(key, 0)
        p = paper.get(paper_key) if paper_key else None
        rows.append({"stage": label, "this run": n, "this run %": round(100 * n / total, 2),
                     "paper": p, "paper %": None if p is None else round(100 * p / paper_total, 2),
                     "note": "paper: approx." if paper_key == "images_manually_inspected" else ""})
    df = pd.DataFrame(rows).set_index("stage")
    df["paper"] = df["paper"].astype("Int64")
    return df
