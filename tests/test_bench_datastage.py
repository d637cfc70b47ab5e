"""The iMaterialist-layout generator of the data-stage benchmark writes what the reader and refinement read."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import imat_synth  # noqa: E402

from clothparse import rle  # noqa: E402
from clothparse.datasets.imaterialist import IMaterialist  # noqa: E402


def test_ellipse_rle_is_the_filled_ellipse_one_run_per_column():
    h, w = 40, 30
    box = (5.0, 8.0, 21.0, 34.0)
    mask = rle.decode(imat_synth.ellipse_rle(box, h, w), h, w)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    inside = ((xx - 13) / 8) ** 2 + ((yy - 21) / 13) ** 2 <= 1
    assert (mask != inside).sum() <= 2 * w            # at most the rounding of each column's two ends
    runs = len(imat_synth.ellipse_rle(box, h, w).split()) // 2
    assert runs == int(mask.any(axis=0).sum())
    # an ellipse past the image's edges is clipped and stays a valid RLE
    big = imat_synth.ellipse_rle((-10.0, -10.0, 50.0, 60.0), h, w)
    assert rle.decode(big, h, w).any(axis=0).all()


def test_layout_reads_back_with_the_real_scale_per_image(tmp_path):
    stats = imat_synth.write_layout(tmp_path / "src", 0.0015)
    n = round(0.0015 * imat_synth.FULL_IMAGES)
    assert stats["images"] == n == len(list((tmp_path / "src/train").glob("*.jpg")))
    assert 5 < stats["rows"] / n < 10                 # several garments and parts per image
    ds = IMaterialist(tmp_path / "src")               # every RLE validated, every JPEG header read
    assert set(ds.skipped.counts()) <= {"jumpsuit"} and len(ds.repaired) == 0
    assert len(ds) + len(ds.skipped) == n
    table = pd.read_csv(tmp_path / "src/train.csv", dtype=str)
    assert table["ClassId"].str.contains("_").any()   # attribute ids on garments
    persons = pd.read_csv(tmp_path / "src/persons.csv")
    assert set(persons.columns) == {"ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated"}
    assert ((persons.x_max > persons.x_min) & (persons.y_max > persons.y_min)).all()
    assert (persons.groupby("ImageId").size() > 1).sum() == stats["multi_person"] > 0
    sample = ds[0]
    assert sample.image.shape[:2] == sample.mask.shape and sample.mask.max() > 0


def test_layout_depends_only_on_seed_and_index(tmp_path):
    small = imat_synth.write_layout(tmp_path / "a", 0.0005)
    imat_synth.write_layout(tmp_path / "b", 0.001)
    a = pd.read_csv(tmp_path / "a/train.csv", dtype=str)
    b = pd.read_csv(tmp_path / "b/train.csv", dtype=str)
    pd.testing.assert_frame_equal(a, b.iloc[:len(a)])
    assert small["images"] == 23
