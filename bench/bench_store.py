"""Store building (clothparse.datasets.store): images/s from JPEG files + RLE masks to the 288×192 arrays.

A generated set of photo-sized JPEGs (825×550, the CCP/iMaterialist portrait size) with RLE garment
masks is read by a small reader that does what the iMaterialist reader does per image (decode the
JPEG, decode one RLE per garment instance), so the numbers reflect a real build's work per image.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clothparse import rle
from clothparse.datasets.base import Sample
from clothparse.datasets.store import build_store, resize_image, resize_mask
from clothparse.masks import classes_present

from benchlib import Row, bench

HEIGHT, WIDTH = 825, 550


class JpegRleDataset:
    """JPEGs in a folder plus garment instances as (class id, RLE) — the store's dataset contract."""

    def __init__(self, folder: Path, instances: dict[str, list[tuple[int, str]]]):
        self.folder = Path(folder)
        self.instances = instances
        self.image_ids = sorted(instances)
        self.source = f"bench:{self.folder}"

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> Sample:
        image_id = self.image_ids[i]
        with Image.open(self.folder / image_id) as im:
            image = np.asarray(im.convert("RGB"))
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
        for cls, code in self.instances[image_id]:
            mask[rle.decode(code, *image.shape[:2])] = cls
        return Sample(image, mask, image_id, classes_present(mask))


def generate(folder: Path, n: int, seed: int = 0) -> JpegRleDataset:
    """``n`` smooth-noise JPEGs (quality 90) with 3 elliptic garment instances each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    instances = {}
    for k in range(n):
        coarse = rng.integers(0, 256, (22, 15, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)  # sensor noise
        image_id = f"{k:05d}.jpg"
        Image.fromarray(image).save(folder / image_id, quality=90)
        garments = []
        for cls in rng.choice(np.arange(1, 9), 3, replace=False):
            cy, cx = rng.uniform(0.2, 0.8) * HEIGHT, rng.uniform(0.3, 0.7) * WIDTH
            ry, rx = rng.uniform(0.08, 0.25) * HEIGHT, rng.uniform(0.1, 0.3) * WIDTH
            garments.append((int(cls), rle.encode(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)))
        instances[image_id] = garments
    return JpegRleDataset(folder, instances)


def _per_image_ms(ds: JpegRleDataset, count: int) -> list[Row]:
    """Where a serial build spends its time, per image."""
    t_jpeg = t_rle = t_resize = 0.0
    for i in range(count):
        image_id = ds.image_ids[i]
        t0 = time.perf_counter()
        with Image.open(ds.folder / image_id) as im:
            image = np.asarray(im.convert("RGB"))
        t1 = time.perf_counter()
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
        for cls, code in ds.instances[image_id]:
            mask[rle.decode(code, *image.shape[:2])] = cls
        t2 = time.perf_counter()
        resize_image(image, (288, 192))
        resize_mask(mask, (288, 192))
        t3 = time.perf_counter()
        t_jpeg, t_rle, t_resize = t_jpeg + t1 - t0, t_rle + t2 - t1, t_resize + t3 - t2
    return [Row("  of which: JPEG decode 825×550", 1e3 * t_jpeg / count, "ms/image"),
            Row("  of which: RLE decode, 3 instances", 1e3 * t_rle / count, "ms/image"),
            Row("  of which: resize image+mask", 1e3 * t_resize / count, "ms/image")]


@bench("store", "store build throughput from 825×550 JPEGs + RLE masks, in-process vs 2 worker processes")
def store_throughput(quick: bool) -> list[Row]:
    n = 24 if quick else 100
    rows = []
    with tempfile.TemporaryDirectory(prefix="clothparse-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        t0 = time.perf_counter()
        ds = generate(tmp / "images", n)
        gen_s = time.perf_counter() - t0
        rates = {}
        for workers in (0, 2):
            t0 = time.perf_counter()
            store = build_store(ds, tmp / f"store-w{workers}", size=(288, 192), workers=workers, progress=False)
            seconds = time.perf_counter() - t0
            assert len(store) == n
            rates[workers] = n / seconds
            rows.append(Row(f"build {n} images, workers={workers}", rates[workers], "images/s",
                            f"{seconds:.2f} s" + (", includes starting the workers" if workers else "")))
        rows.append(Row("speed-up workers=2 / workers=0", rates[2] / rates[0], "×",
                        "2 shared cores here: expect < 2"))
        rows.extend(_per_image_ms(ds, min(n, 20)))
        rows.append(Row(f"(generating the {n} JPEGs)", gen_s, "s", "not part of the build"))
    return rows
