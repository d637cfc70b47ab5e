""":func:`refine`, the step itself, as a few named steps: check the inputs and compute the key,
reuse a completed identical run, prepare the output folder, decide every image, finish.

The output folder is a :class:`clothparse.keyed.KeyedFolder` whose marker is ``REFINE.json``:
it holds the key only once everything else is written, so an interrupted run is redone.
"""
from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import pandas as pd

from clothparse.keyed import KeyedFolder
from clothparse.refine.cache import CACHE_FILE, DetectionCache, detector_key
from clothparse.refine.common import DEFAULT_MARGINS, REFINE_VERSION
from clothparse.refine.decide import Refinement
from clothparse.refine.detectors import PersonDetector, detector_identity
from clothparse.refine.inputs import Source, check_arguments, read_decisions, read_source, refine_key
from clothparse.refine.report import RECORD_COLUMNS, RefineReport, stage_counts

MARKER = "REFINE.json"
#: What a run rewrites; anything else in out_root (decisions files, the detection cache) stays.
OUTPUTS = ("train", "train.csv", "persons.csv", "label_descriptions.json", "review", "review.csv", "report.json")


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
    margins = check_arguments(src, out, margins, chunk_size)
    decisions_path = Path(decisions) if decisions is not None else None
    decision_of, decisions_sha = read_decisions(decisions_path, out) if decisions_path else ({}, None)
    identity = detector_identity(detector)
    folder = KeyedFolder(out, refine_key(src, identity, margins, decisions_sha), MARKER)
    if _is_done(folder):
        return RefineReport.load(out, reused=True)
    source = read_source(src)                  # read and check every input before touching out_root
    _start(folder, source)
    run = Refinement(source, out, detector, DetectionCache(out / CACHE_FILE, detector_key(identity)),
                     margins, decision_of)
    _decide_all(run, source.image_ids, progress, chunk_size, workers)
    run.write_tables()
    report = _report(run, folder.key, identity, decisions_path, time.perf_counter() - t0)
    report.save(out / "report.json")
    folder.mark_complete(version=REFINE_VERSION, counts=report.counts)
    return report


def _is_done(folder: KeyedFolder) -> bool:
    """A completed run with this key wrote ``folder``; refuses folders refine did not write."""
    out = Path(folder.path)
    if not folder.marker_path.is_file():
        if out.is_dir() and ((out / "train.csv").exists() or (out / "train").exists()):
            raise FileExistsError(f"{out} holds a dataset that refine did not write (no {MARKER}); "
                                  f"choose an empty or new out_root")
        return False
    return folder.is_complete() and (out / "report.json").is_file()


def _start(folder: KeyedFolder, source: Source) -> None:
    """Drop the marker and this step's old outputs; leave a marker without a key meanwhile, so an
    interrupted run is redone (never reused) yet its folder is still known as refine's."""
    out = folder.claim(in_progress=folder.key)
    folder.remove(OUTPUTS)
    (out / "train").mkdir()
    if source.labels_path.is_file():
        shutil.copy2(source.labels_path, out / "label_descriptions.json")


def _decide_all(run: Refinement, image_ids: list[str], progress: bool, chunk_size: int, workers: int | None) -> None:
    """Every image, ``chunk_size`` at a time (bounded memory, one detector call per round and chunk)."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(image_ids), desc="refine", unit="img")
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, len(image_ids), chunk_size):
            ids = image_ids[start:start + chunk_size]
            run.run_chunk(ids, pool)
            if bar is not None:
                bar.update(len(ids))
    if bar is not None:
        bar.close()


def _report(run: Refinement, key: str, identity: dict, decisions_path: Path | None, elapsed: float) -> RefineReport:
    rec = pd.DataFrame(run.records, columns=RECORD_COLUMNS).sort_values("image_id", ignore_index=True)
    reviewed = {r["ImageId"] for r in run.review_rows}
    counts = stage_counts(rec, len(run.source.image_ids), run.margins, len(run.review_rows),
                          decisions_unused=len(set(run.decision_of) - reviewed), n_size_fixed=len(run.size_fixed))
    return RefineReport(src_root=str(run.source.root), out_root=str(run.out), key=key, margins=run.margins,
                        detector=identity, decisions=str(decisions_path) if decisions_path else None, counts=counts,
                        records=rec, failures=run.failures, elapsed_s=round(elapsed, 3),
                        detection_cache={"hits": run.cache.hits, "misses": run.cache.misses},
                        size_fixed=run.size_fixed)
