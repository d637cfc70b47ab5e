"""The data stage at the paper's size: reader, refinement, split and store timed on iMaterialist-layout data.

``python bench/datastage.py --fraction 0.05 0.2`` writes :mod:`imat_synth` data for 5 % and 20 % of the real
set's 45,622 images under ``--root`` (default ``$TMPDIR/clothparse-datastage``), runs each stage of
``clothparse data --profile paper`` (``clothparse.datasets.prepare.prepare``) on it in a fresh process, and prints per
stage and size: wall seconds, CPU seconds, ms per image, the peak memory of the stage's process tree, and the
full set's cost projected from the per-image cost of the larger size on 2 and on 16 cores. ``--json`` keeps
the numbers; the data is deleted afterwards unless ``--keep``.

Stages, in prepare's order: ``reader`` (:class:`~clothparse.datasets.imaterialist.IMaterialist` on the
source, every RLE validated, every JPEG header read), ``store_base`` (the base store at 288×192),
``split`` (the stratified split of the base store's images), ``refine`` (the multi-person cleaning with
:class:`~clothparse.refine.PersonsCsvDetector`: the persons file stands in for Mask R-CNN, whose GPU time
is not part of this), ``reader_refined`` and ``store_refined``.

Memory is sampled every 0.1 s over the stage's process and its children (store workers): ``rss`` counts
everything resident, ``anon`` leaves out file pages (the memory-mapped store, the page cache of the JPEGs),
which the kernel can drop; ``maxrss`` is the main process's exact peak (``getrusage``). CPU seconds are
split into what runs in the main thread (serial) and what runs in worker threads or processes (parallel,
up to the stage's cap), which is what the 16-core projection divides.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

STAGES = ("reader", "store_base", "split", "refine", "reader_refined", "store_refined")
#: What a stage needs from the stages before it.
NEEDS = {"split": ("store_base",), "reader_refined": ("refine",), "store_refined": ("refine",)}
SIZE = (288, 192)


# --- one stage, in its own process ----------------------------------------------------------------------------
def _reader(root: Path):
    from clothparse.datasets.imaterialist import IMaterialist

    return IMaterialist(root)


def _store(root: Path, work: Path, name: str, workers: int | None) -> dict:
    from clothparse.datasets.store import build_store

    t0 = time.perf_counter()
    ds = _reader(root)
    t1 = time.perf_counter()
    store = build_store(ds, work / name, size=SIZE, workers=workers, progress=False, source=f"bench:{root}")
    return {"seconds": time.perf_counter() - t1, "reader_seconds": t1 - t0, "n": len(store),
            "workers": store.meta["workers"], "store_bytes": sum(f.stat().st_size for f in Path(store.path).iterdir())}


def run_stage(stage: str, src: Path, work: Path, workers: int | None) -> dict:
    """Do one stage on ``src`` (earlier stages' outputs under ``work``); its seconds and counts."""
    refined = work / "refined"
    t0 = time.perf_counter()
    if stage in ("reader", "reader_refined"):
        ds = _reader(src if stage == "reader" else refined)
        out = {"n": len(ds), "skipped": dict(ds.skipped.counts())}
    elif stage in ("store_base", "store_refined"):
        return _store(src if stage == "store_base" else refined, work, stage, workers)
    elif stage == "split":
        from clothparse.datasets.split import load_or_create_split
        from clothparse.datasets.store import Store

        (path,) = [p for p in (work / "store_base").iterdir() if (p / "COMPLETE").is_file()]
        store = Store(path)
        t0 = time.perf_counter()
        split = load_or_create_split(store.image_ids, store.classes, work / "split.csv")
        out = {"n": len(split)}
    elif stage == "refine":
        from clothparse.refine import PersonsCsvDetector, refine

        report = refine(src, refined, PersonsCsvDetector(src), progress=False, workers=workers)
        out = {"n": report.counts["total"], "counts": report.counts}
    else:
        raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
    out["seconds"] = time.perf_counter() - t0
    return out


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _stage_main(args) -> int:
    """The stage in this process: its result, with the CPU seconds of this process's main thread and of its
    other threads during the stage (the imports before it are not counted)."""
    thread0, self0 = _cpu(resource.RUSAGE_THREAD), _cpu(resource.RUSAGE_SELF)
    result = run_stage(args.stage, Path(args.src), Path(args.work), args.workers)
    serial = _cpu(resource.RUSAGE_THREAD) - thread0
    result.update(cpu_main_thread_s=serial, cpu_other_threads_s=_cpu(resource.RUSAGE_SELF) - self0 - serial,
                  maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --- the parent: a stage in a subprocess, sampled -------------------------------------------------------------
class TreeSampler(threading.Thread):
    """Peak RSS / anonymous memory summed over a process and its descendants, and CPU seconds per thread."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        import psutil

        self.root, self.interval, self.stop = psutil.Process(pid), interval, threading.Event()
        self.peak_rss = self.peak_anon = 0
        self.cpu: dict[tuple[int, int], float] = {}   # (pid, tid) → user + system seconds
        self.main_tid = pid

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            rss = anon = 0
            for p in procs:
                try:
                    m = p.memory_info()
                    rss, anon = rss + m.rss, anon + m.rss - m.shared
                    for t in p.threads():
                        self.cpu[(p.pid, t.id)] = t.user_time + t.system_time
                except psutil.Error:
                    continue
            self.peak_rss, self.peak_anon = max(self.peak_rss, rss), max(self.peak_anon, anon)
            self.stop.wait(self.interval)

    def children_cpu(self) -> float:
        """CPU seconds of the processes below the main one (store workers, the forkserver)."""
        return sum(v for (pid, _), v in self.cpu.items() if pid != self.root.pid)


def measure(stage: str, src: Path, work: Path, workers: int | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--src", str(src), "--work", str(work)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    load = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, _ = proc.communicate()
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"stage {stage} failed (exit {proc.returncode})")
    result = json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[7:])
    result.update(stage=stage, cpu_serial_s=result["cpu_main_thread_s"],
                  cpu_parallel_s=result["cpu_other_threads_s"] + sampler.children_cpu(),
                  peak_rss_mb=sampler.peak_rss / 2**20, peak_anon_mb=sampler.peak_anon / 2**20,
                  load_before=load, load_after=os.getloadavg()[0])
    return result


#: How many cores a stage's parallel part can use (its own cap): store workers min(cores, 8); refinement's
#: image-loading threads min(4, cores); reader and split run in one thread.
def parallel_cap(stage: str, cores: int) -> int:
    if stage.startswith("store"):
        return min(cores, 8)
    if stage == "refine":
        return min(cores, 4)
    return 1


def project(result: dict, n_images: int, full: int, cores: int) -> float:
    """Wall seconds for ``full`` images on ``cores``: serial CPU + parallel CPU / cap, scaled per image."""
    scale = full / n_images
    return scale * (result["cpu_serial_s"] + result["cpu_parallel_s"] / parallel_cap(result["stage"], cores))


def run_fraction(fraction: float, root: Path, workers: int | None, progress: bool,
                 only: tuple[str, ...] = STAGES) -> dict:
    from imat_synth import write_layout

    src, work = root / f"f{fraction:g}" / "src", root / f"f{fraction:g}" / "work"
    t0 = time.perf_counter()
    data = write_layout(src, fraction, progress=progress)
    data["generate_seconds"] = time.perf_counter() - t0
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    needed = set(only) | {n for s in only for n in NEEDS.get(s, ())}
    stages = []
    for stage in (s for s in STAGES if s in needed):
        print(f"  {fraction:g}: {stage} …", file=sys.stderr, flush=True)
        r = measure(stage, src, work, workers)
        if stage in only:
            stages.append(r)
        if stage == "split" or (stage == "store_base" and "split" not in needed):
            shutil.rmtree(work / "store_base")  # not needed any more: keep the disk use down
    shutil.rmtree(root / f"f{fraction:g}")
    return {"fraction": fraction, "data": data, "stages": stages}


def table(runs: list[dict], full: int) -> str:
    head = ("stage", "images", "wall s", "CPU s", "ms/img (CPU)", "peak RSS MB", "peak anon MB", "main maxrss MB",
            "full set, 2 cores", "full set, 16 cores")
    lines = [head]
    for run in runs:
        n_src = run["data"]["images"]
        total2 = total16 = 0.0
        for r in run["stages"]:
            n = n_src
            cpu = r["cpu_serial_s"] + r["cpu_parallel_s"]
            p2, p16 = project(r, n, full, 2), project(r, n, full, 16)
            total2, total16 = total2 + p2, total16 + p16
            lines.append((r["stage"], f"{n:,}", f"{r['seconds']:.1f}", f"{cpu:.1f}", f"{1e3 * cpu / n:.1f}",
                          f"{r['peak_rss_mb']:,.0f}", f"{r['peak_anon_mb']:,.0f}", f"{r['maxrss_mb']:,.0f}",
                          _minutes(p2), _minutes(p16)))
        lines.append(("all stages", f"{n_src:,}", f"{sum(r['seconds'] for r in run['stages']):.1f}", "", "", "", "",
                      "", _minutes(total2), _minutes(total16)))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in lines)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, nargs="+", default=[0.05, 0.2],
                        help="shares of the real set's 45,622 images to measure at (default 0.05 0.2)")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "clothparse-datastage",
                        help="where the generated data and the stages' outputs go (deleted after each size)")
    parser.add_argument("--workers", type=int, default=None,
                        help="store worker processes and refinement threads (default: their own defaults)")
    parser.add_argument("--only", default=",".join(STAGES),
                        help=f"comma-separated stages to report (default all: {','.join(STAGES)}); "
                             "the stages they need run too, unreported")
    parser.add_argument("--json", type=Path, help="also write the measurements as JSON")
    parser.add_argument("--progress", action="store_true", help="show the generator's progress bar")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        return _stage_main(args)
    from imat_synth import FULL_IMAGES

    header = (f"{date.today().isoformat()}, python {platform.python_version()}, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.2f}")
    print(header, flush=True)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in STAGES]
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    runs = [run_fraction(f, args.root, args.workers, args.progress, only) for f in args.fraction]
    for run in runs:
        d = run["data"]
        print(f"fraction {run['fraction']:g}: {d['images']:,} images, {d['rows']:,} rows, {d['megapixels']:,.0f} MP, "
              f"train.csv {d['csv_bytes'] / 2**20:,.0f} MiB, JPEGs {d['image_bytes'] / 2**20:,.0f} MiB, "
              f"{d['multi_person']:,} multi-person; generated in {d['generate_seconds']:.0f} s; load "
              + ", ".join(f"{r['stage']} {r['load_before']:.1f}" for r in run["stages"]))
    print(table(runs, FULL_IMAGES))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
