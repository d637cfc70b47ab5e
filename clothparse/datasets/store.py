"""The store: every image and mask of a dataset resized once to the training size, as uint8 arrays.

Training reads only the store (memory-mapped ``.npy`` files), so the accelerator never waits on
JPEG decoding or RLE decoding. A store lives in ``root/<key>/`` where ``key`` hashes what it was
made from (:func:`store_key`): a different source, refinement, size, set of image ids or store
format gives a different folder; the same inputs reuse the finished one.

Layout of ``root/<key>/``::

    images.npy   N×H×W×3 uint8 (RGB)
    masks.npy    N×H×W   uint8 (0..8, see clothparse.categories)
    index.csv    i,image_id,classes,classes_resized  (space-separated clothing ids 1..8; ``classes``
                 from the original-resolution mask, ``classes_resized`` from the stored one: a tiny
                 garment can vanish when shrunk)
    meta.json    key, format, size, source, refinement, n, skipped (reader's and store's), created, ...
    COMPLETE     written last: {"key": <key>, "finished": ..., "created": ..., "n": ...}

A build writes into ``root/<key>.tmp-<pid>/`` and renames it to ``root/<key>/`` only when complete,
so an interrupted build leaves nothing that looks finished; its leftovers are removed by the next
build. A build counts ``root/<key>/`` as finished when its COMPLETE marker holds the key
(:class:`clothparse.keyed.KeyedFolder`); a folder without one is rebuilt. Images the dataset
cannot load (``ValueError`` / ``OSError``, e.g. a corrupt JPEG) are skipped, counted and listed
with their reason in ``meta.json``.

Resizing: images with PIL ``BOX`` (area averaging) when shrinking in both directions, ``BILINEAR``
otherwise; masks with ``NEAREST`` (class ids must never blend).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from numpy.lib.format import open_memmap
from PIL import Image

from clothparse.datasets.base import check_sample
from clothparse.keyed import COMPLETE, KeyedFolder, now, stable_hash, write_json
from clothparse.masks import classes_present

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMAT_VERSION", "DEFAULT_SIZE", "store_key", "resize_image", "resize_mask", "build_store",
           "open_store", "Store", "StoreError"]

#: Bump when the layout or the resizing changes: it is part of the key, so old stores are not reused.
FORMAT_VERSION: int = 1
#: Training size of the paper, H × W.
DEFAULT_SIZE: tuple[int, int] = (288, 192)
#: Below this many images a build runs in-process by default (starting workers costs more).
_INPROCESS_BELOW: int = 64
_CHUNK: int = 16


class StoreError(RuntimeError):
    """A store folder is missing, incomplete or inconsistent."""


def _ids_digest(image_ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for i in image_ids:
        h.update(str(i).encode("utf-8") + b"\n")
    return h.hexdigest()


def store_key(source: str, refinement: str | None, size: Sequence[int],
              image_ids: Sequence[str] | None = None) -> str:
    """sha256 (hex) of the inputs a store depends on.

    ``source`` describes the data (reader kind, root, generator seed …), ``refinement`` the cleaning
    applied (None = raw), ``size`` is H × W. ``image_ids``, when given, enter through a digest so a
    dataset whose image set changed under the same description gets a new store.
    """
    h, w = (int(v) for v in size)
    payload = {"format": FORMAT_VERSION, "source": str(source), "refinement": refinement, "size": [h, w]}
    if image_ids is not None:
        payload["image_ids"] = _ids_digest(image_ids)
    return stable_hash(payload, length=64)


def resize_image(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """H×W×3 uint8 → ``size`` (H, W): BOX (area) when shrinking both ways, else BILINEAR."""
    h, w = (int(v) for v in size)
    if image.shape[:2] == (h, w):
        return np.ascontiguousarray(image)
    shrink = image.shape[0] >= h and image.shape[1] >= w
    resample = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize((w, h), resample=resample))


def resize_mask(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """H×W uint8 class mask → ``size`` (H, W) with nearest neighbour (no new class ids appear)."""
    h, w = (int(v) for v in size)
    if mask.shape == (h, w):
        return np.ascontiguousarray(mask)
    return np.asarray(Image.fromarray(mask).resize((w, h), resample=Image.Resampling.NEAREST))


def _classes_str(classes: Sequence[int]) -> str:
    return " ".join(str(int(c)) for c in classes)


def _parse_classes(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in str(text).split())


# --- building ----------------------------------------------------------------------------------

# Per-process state of a build worker (set by _init_worker; in-process builds use the same code).
_W: dict[str, Any] = {}


def _init_worker(dataset, folder: str, n: int, size: tuple[int, int], ids: list[str] | None = None) -> None:
    h, w = size
    if ids is None:
        ids = getattr(dataset, "image_ids", None)
        ids = [str(i) for i in ids] if ids is not None else None
    _W.update(dataset=dataset, size=size, ids=ids,
              images=open_memmap(os.path.join(folder, "images.full.npy"), mode="r+"),
              masks=open_memmap(os.path.join(folder, "masks.full.npy"), mode="r+"))
    assert _W["images"].shape == (n, h, w, 3)


def _process_chunk(indices: Sequence[int], part=None) -> list[tuple]:
    """Load, check, resize and write rows ``indices``; one result tuple per index:
    ``(i, image_id, classes, classes_resized, None)`` or ``(i, image_id, None, None, reason)``.
    ``part``: the items of ``indices`` as a dataset of their own (``dataset.take(indices)``), or None to read
    them from the whole dataset."""
    ds, size, ids, images, masks = _W["dataset"], _W["size"], _W["ids"], _W["images"], _W["masks"]
    out = []
    for j, i in enumerate(indices):
        try:
            sample = part[j] if part is not None else ds[i]
            image, mask = np.asarray(sample.image), np.asarray(sample.mask)
            check_sample(image, mask, source=f"image {sample.image_id!r}")
            if mask.dtype != np.uint8:
                if mask.size and mask.min() < 0:
                    raise ValueError(f"image {sample.image_id!r}: negative mask value {int(mask.min())}")
                mask = mask.astype(np.uint8)
        except (ValueError, OSError) as err:  # unreadable file or bad annotation: skip, with the reason
            out.append((i, ids[i] if ids is not None else str(i), None, None, f"{type(err).__name__}: {err}"))
            continue
        if ids is not None and str(sample.image_id) != ids[i]:  # a reader bug: fail, do not store garbage
            raise RuntimeError(f"dataset item {i} has image_id {sample.image_id!r} but image_ids[{i}] is {ids[i]!r}")
        small_mask = resize_mask(mask, size)
        images[i] = resize_image(image, size)
        masks[i] = small_mask
        out.append((i, str(sample.image_id), classes_present(mask), classes_present(small_mask), None))
    # No flush here: the pages are shared through the page cache; build_store fsyncs each file once.
    return out


def _keep_freed_memory() -> None:
    """Let glibc keep large freed blocks in this process's heap instead of unmapping them.

    A fresh worker otherwise maps and page-faults every big temporary anew (the mask-sized arrays
    of RLE decoding, the decoded JPEG): measured 2–3× slower per image than in a long-lived process.
    No-op where the C library has no ``mallopt``."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: blocks below 64 MiB come from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MiB of free heap
    except (OSError, AttributeError):
        pass


def _worker_main(dataset, folder: str, n: int, size: tuple[int, int], ids: list[str], tasks, done) -> None:
    """A build worker process: ``(chunk of indices, its part or None)`` from ``tasks`` (None: stop), one result
    list per chunk to ``done``."""
    import signal
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    _keep_freed_memory()
    try:
        _init_worker(dataset, folder, n, size, ids)
        while (task := tasks.get()) is not None:
            done.put(("ok", _process_chunk(*task)))
    except BaseException as err:  # a reader bug, not a bad image: the build must fail, loudly
        done.put(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))


def _run_workers(dataset, folder: str, n: int, size: tuple[int, int], chunks: list[list[int]],
                 workers: int, mp_context: str | None):
    """Yield each chunk's results as worker processes finish it; stop all workers on any failure.

    Plain processes and queues rather than ``ProcessPoolExecutor``: a worker that dies outright
    (killed for memory, a crash in a C library) must end the build with an error, not hang it."""
    import multiprocessing as mp
    import queue

    # forkserver/spawn, not fork: the caller may hold threads (torch, tqdm) that a fork copies
    # mid-lock; the dataset travels to each worker by pickle either way.
    if mp_context is None:
        mp_context = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(mp_context)
    if mp_context == "forkserver":  # workers fork from a server that has imported these modules once
        ctx.set_forkserver_preload(["clothparse.datasets.store", type(dataset).__module__])
    workers = max(1, min(workers, len(chunks)))
    tasks, done = ctx.Queue(), ctx.Queue()
    feed = _Feeder(dataset, chunks, tasks, workers)
    ids = [str(i) for i in dataset.image_ids] if getattr(dataset, "image_ids", None) is not None else None
    procs = [ctx.Process(target=_worker_main, args=(feed.worker_dataset, folder, n, size, ids, tasks, done),
                         daemon=True) for _ in range(workers)]
    try:
        for p in procs:
            p.start()
        for _ in range(len(chunks)):
            while True:
                try:
                    status, payload = done.get(timeout=1.0)
                    break
                except queue.Empty:
                    dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                    if dead or all(p.exitcode is not None for p in procs):
                        raise RuntimeError(f"a store worker process died (exit code {dead[0] if dead else 0}) "
                                           f"before finishing its images; killed for lack of memory? "
                                           f"Try fewer workers, or workers=0 to see the error in-process")
            if status == "error":
                raise RuntimeError(f"store worker failed: {payload}")
            feed.put_next()
            yield payload
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is not None:
                p.join(timeout=5)
        tasks.cancel_join_thread()  # unconsumed chunks must not block our exit
        tasks.close()
        done.close()


class _Feeder:
    """Puts chunks on the workers' task queue a few at a time (two per worker ahead), then one stop per worker.

    A dataset with ``take(indices)`` (a dataset of just those items, in that order) sends each chunk's items
    with the chunk, and the workers start from ``take([])``: no worker holds the whole dataset, so their
    memory does not grow with it (the iMaterialist reader's RLE strings are most of train.csv, hundreds of MB
    at the full set's size, which every worker would otherwise unpickle). Feeding a few at a time keeps the
    parts waiting in the queue few as well."""

    def __init__(self, dataset, chunks: list[list[int]], tasks, workers: int):
        self.take = getattr(dataset, "take", None)
        self.worker_dataset = self.take([]) if self.take is not None else dataset
        self.chunks, self.tasks, self.workers = iter(chunks), tasks, workers
        self.stopped = False
        for _ in range(2 * workers):
            self.put_next()

    def put_next(self) -> None:
        chunk = next(self.chunks, None)
        if chunk is not None:
            self.tasks.put((chunk, self.take(chunk) if self.take is not None else None))
        elif not self.stopped:
            self.stopped = True
            for _ in range(self.workers):
                self.tasks.put(None)


def _default_workers(n: int) -> int:
    if n < _INPROCESS_BELOW:
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(cpus, 8))


def _describe_source(dataset) -> str:
    for attr in ("source", "description"):
        value = getattr(dataset, attr, None)
        if isinstance(value, str) and value:
            return value
    root = getattr(dataset, "root", None)
    kind = f"{type(dataset).__module__}.{type(dataset).__qualname__}"
    return f"{kind}:{Path(root).resolve()}" if root is not None else kind


def _skip_entries(report) -> list[list[str]]:
    if report is None:
        return []
    entries = getattr(report, "entries", report)
    return [[str(a), str(b)] for a, b in entries]


def _remove_stale_tmp(root: Path, key: str) -> None:
    """Delete leftovers of interrupted builds of ``key`` (tmp folders whose process is gone)."""
    for tmp in root.glob(f"{key}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            pid = -1
        alive = False
        if pid > 0 and pid != os.getpid():
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        if not alive:
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _compact(src: Path, dst: Path, keep: np.ndarray) -> None:
    """Copy rows ``keep`` of the ``.npy`` at ``src`` into a new ``.npy`` at ``dst`` (block-wise)."""
    full = np.load(src, mmap_mode="r")
    out = open_memmap(dst, mode="w+", dtype=np.uint8, shape=(len(keep),) + full.shape[1:])
    for start in range(0, len(keep), 256):
        out[start:start + 256] = full[keep[start:start + 256]]
    out.flush()
    del out, full
    src.unlink()


def build_store(dataset, root: str | Path, size: Sequence[int] = DEFAULT_SIZE, workers: int | None = None,
                progress: bool = True, source: str | None = None, refinement: str | None = None,
                mp_context: str | None = None) -> "Store":
    """Resize every sample of ``dataset`` to ``size`` (H, W) into ``root/<key>/`` and open it.

    ``dataset``: ``len(ds)``, ``ds[i] -> Sample``, ``ds.image_ids``, optional ``ds.skipped`` (its
    reader's :class:`~clothparse.datasets.base.SkipReport`, copied into ``meta.json``), optional
    ``ds.take(indices)`` (the items ``indices`` as a dataset of their own: workers then get only their
    chunks' items, see :class:`_Feeder`).
    ``source`` describes the data for the key (default: ``ds.source`` or the reader class and root);
    ``refinement`` names the cleaning applied. When ``root/<key>/`` is complete the store is just
    opened. ``workers``: processes (0 = in-process; default 0 below 64 images, else up to 8); the
    dataset (or, with ``take``, each chunk's part of it) is pickled to the workers (so its class must be
    importable). ``mp_context``:
    multiprocessing start method (default ``"forkserver"``, else ``"spawn"``).
    """
    t0 = time.perf_counter()
    size, ids = _check_inputs(dataset, size)
    source = source or _describe_source(dataset)
    key = store_key(source, refinement, size, ids)
    final = Path(root) / key
    if _finished(final, key):
        return Store(final)
    staging = _start_staging(Path(root), key)
    workers = _default_workers(len(ids)) if workers is None else int(workers)
    try:
        results = _fill(dataset, staging.path, len(ids), size, workers, mp_context, progress)
        kept, skipped = _compact_rows(staging.path, results, len(ids), source)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    meta = _write_index_and_meta(staging.path, kept, {"reader": _skip_entries(getattr(dataset, "skipped", None)),
                                                      "store": skipped},
                                 key=key, size=size, source=source, refinement=refinement, ids=ids,
                                 workers=workers, seconds=time.perf_counter() - t0)
    _seal(staging, meta)
    return Store(_publish(staging.path, final, key))


def _check_inputs(dataset, size: Sequence[int]) -> tuple[tuple[int, int], list[str]]:
    """``((H, W), image ids as strings)``; ``ValueError`` on a bad size or ids that do not match the items."""
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ValueError(f"store size must be positive (H, W), got {tuple(size)}")
    n = len(dataset)
    ids = getattr(dataset, "image_ids", None)
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    if len(ids) != n:
        raise ValueError(f"dataset has {n} items but {len(ids)} image_ids")
    return (h, w), ids


def _finished(folder: Path, key: str) -> bool:
    """``folder`` holds the finished store ``key`` (its COMPLETE marker says so)."""
    return KeyedFolder(folder, key, COMPLETE).is_complete()


def _start_staging(root: Path, key: str) -> KeyedFolder:
    """An empty ``root/<key>.tmp-<pid>/`` to build in, after removing what interrupted builds left behind
    (their tmp folders, and a ``root/<key>/`` that no finished build made)."""
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root, key)
    final = root / key
    if final.exists():  # a folder without a COMPLETE marker was not made by a finished build: start over
        shutil.rmtree(final)
    staging = KeyedFolder(root / f"{key}.tmp-{os.getpid()}", key, COMPLETE)
    shutil.rmtree(staging.path, ignore_errors=True)
    staging.start()
    return staging


def _fill(dataset, folder: Path, n: int, size: tuple[int, int], workers: int, mp_context: str | None,
          progress: bool) -> list[tuple]:
    """Write every item, resized, into ``folder``'s ``images.full.npy`` / ``masks.full.npy``; the per-item
    results of :func:`_process_chunk`, in no particular order."""
    h, w = size
    open_memmap(folder / "images.full.npy", mode="w+", dtype=np.uint8, shape=(n, h, w, 3)).flush()
    open_memmap(folder / "masks.full.npy", mode="w+", dtype=np.uint8, shape=(n, h, w)).flush()
    chunks = [list(range(s, min(s + _CHUNK, n))) for s in range(0, n, _CHUNK)]
    results: list[tuple] = []

    from tqdm.auto import tqdm

    with tqdm(total=n, desc="store", unit="img", disable=not progress) as bar:
        if workers <= 0:
            _init_worker(dataset, str(folder), n, size)
            try:
                for chunk in chunks:
                    results.extend(_process_chunk(chunk))
                    bar.update(len(chunk))
            finally:
                _W.clear()  # drop the memmaps so the folder can be renamed / removed
        else:
            from contextlib import closing

            with closing(_run_workers(dataset, str(folder), n, size, chunks, workers, mp_context)) as parts:
                for part in parts:
                    results.extend(part)
                    bar.update(len(part))
    return results


def _compact_rows(folder: Path, results: list[tuple], n: int, source: str) -> tuple[list[tuple], list[list[str]]]:
    """``(kept results in item order, [image_id, reason] of the skipped)``; ``images.npy`` / ``masks.npy``
    hold the kept rows only. ``ValueError`` when nothing could be stored."""
    results = sorted(results, key=lambda r: r[0])
    kept = [r for r in results if r[4] is None]
    skipped = [[r[1], r[4]] for r in results if r[4] is not None]
    if not kept:
        raise ValueError(f"no image of the dataset ({source}) could be stored; first reasons: {skipped[:3]}")
    keep = np.array([r[0] for r in kept], dtype=np.int64)
    for name in ("images", "masks"):
        full = folder / f"{name}.full.npy"
        if len(keep) == n:
            full.replace(folder / f"{name}.npy")
        else:
            _compact(full, folder / f"{name}.npy", keep)
    return kept, skipped


def _write_index_and_meta(folder: Path, kept: list[tuple], skipped: dict[str, list], *, key: str,
                          size: tuple[int, int], source: str, refinement: str | None, ids: list[str],
                          workers: int, seconds: float) -> dict:
    """``index.csv`` (one row per stored image) and ``meta.json``; returns the meta."""
    import pandas as pd

    index = pd.DataFrame({"i": np.arange(len(kept)), "image_id": [r[1] for r in kept],
                          "classes": [_classes_str(r[2]) for r in kept],
                          "classes_resized": [_classes_str(r[3]) for r in kept]})
    index.to_csv(folder / "index.csv", index=False)
    meta = {
        "key": key,
        "format": FORMAT_VERSION,
        "size": list(size),
        "source": source,
        "refinement": refinement,
        "n": len(kept),
        "n_dataset": len(ids),
        "skipped": {"reader": skipped["reader"], "store": skipped["store"]},
        "skipped_counts": {"reader": len(skipped["reader"]), "store": len(skipped["store"])},
        "classes_lost_in_resize": int(sum(r[2] != r[3] for r in kept)),
        "image_ids_sha256": _ids_digest(ids),
        "created": now(),
        "build_seconds": round(seconds, 3),
        "workers": workers,
        "resize": {"image": "PIL BOX when shrinking both ways, else BILINEAR", "mask": "PIL NEAREST"},
    }
    write_json(folder / "meta.json", meta)
    return meta


def _seal(staging: KeyedFolder, meta: dict) -> None:
    """Everything on disk first, then the COMPLETE marker (holding the key), itself on disk."""
    for name in ("images.npy", "masks.npy", "index.csv", "meta.json"):
        _fsync(staging.path / name)
    staging.mark_complete(created=meta["created"], n=meta["n"])
    _fsync(staging.marker_path)


def _publish(staging: Path, final: Path, key: str) -> Path:
    """Rename the finished staging folder to ``final`` (atomic); when a concurrent build of the same store
    got there first, keep its folder and drop ours."""
    try:
        os.rename(staging, final)
    except OSError:
        if _finished(final, key):
            shutil.rmtree(staging, ignore_errors=True)
        else:
            raise
    return final


# --- reading -----------------------------------------------------------------------------------

class Store:
    """A finished store folder, memory-mapped read-only.

    ``.images`` N×H×W×3 uint8, ``.masks`` N×H×W uint8, ``.index`` (DataFrame i, image_id, classes,
    classes_resized), ``.image_ids``, ``.classes`` (tuples, original resolution), ``.meta``;
    ``store[i] -> (image, mask)``. Pickles by path (workers reopen the memmaps, nothing is copied).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / COMPLETE).exists():
            raise StoreError(f"{self.path} is not a complete store (no COMPLETE marker): "
                             f"an interrupted or foreign folder; build it with clothparse.datasets.store.build_store")
        try:
            self.meta: dict = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise StoreError(f"{self.path / 'meta.json'}: cannot read ({err})") from err
        import pandas as pd  # on first use: the parser (core install, no pandas) needs only resize_image

        self.index = pd.read_csv(self.path / "index.csv", dtype={"image_id": str, "classes": str,
                                                                 "classes_resized": str},
                                 keep_default_na=False)
        self._open_arrays()
        n = int(self.meta["n"])
        if not (len(self.index) == len(self.images) == len(self.masks) == n):
            raise StoreError(f"{self.path}: meta says {n} images but index.csv has {len(self.index)}, "
                             f"images.npy {len(self.images)}, masks.npy {len(self.masks)}")
        self.image_ids: list[str] = self.index["image_id"].tolist()
        self.classes: list[tuple[int, ...]] = [_parse_classes(c) for c in self.index["classes"]]
        self.classes_resized: list[tuple[int, ...]] = [_parse_classes(c) for c in self.index["classes_resized"]]
        self._row = {image_id: i for i, image_id in enumerate(self.image_ids)}

    def _open_arrays(self) -> None:
        self.images: np.ndarray = np.load(self.path / "images.npy", mmap_mode="r")
        self.masks: np.ndarray = np.load(self.path / "masks.npy", mmap_mode="r")

    @property
    def key(self) -> str:
        return str(self.meta["key"])

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.meta["size"])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[i], self.masks[i]

    def positions(self, image_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of ``image_ids`` (e.g. one split); ``KeyError`` naming the ids not in the store."""
        missing = [i for i in image_ids if i not in self._row]
        if missing:
            raise KeyError(f"{len(missing)} image id(s) not in store {self.path} (e.g. {missing[:3]}); "
                           f"skipped when building? see meta.json 'skipped'")
        return np.array([self._row[i] for i in image_ids], dtype=np.int64)

    def skipped(self) -> pd.DataFrame:
        """Images left out, by the reader or by the store build: columns stage, image_id, reason."""
        import pandas as pd

        rows = [(stage, a, b) for stage in ("reader", "store") for a, b in self.meta["skipped"][stage]]
        return pd.DataFrame(rows, columns=["stage", "image_id", "reason"])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["images"], state["masks"]  # a pickled memmap would copy the whole array
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open_arrays()

    def __repr__(self) -> str:
        h, w = self.size
        return f"Store({str(self.path)!r}, n={len(self)}, size={h}×{w})"


def open_store(root: str | Path, key: str) -> Store:
    """Open the finished store ``root/<key>``."""
    return Store(Path(root) / key)
