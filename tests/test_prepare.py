"""prepare(): the store is keyed on every file a reader reads (photos included), and it says what it skipped."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_ccp import NAMES, write_ccp
from test_imaterialist import make_dataset

from clothparse import rle
from clothparse.datasets.ccp import input_stamps as ccp_stamps
from clothparse.datasets.imaterialist import input_stamps as imaterialist_stamps
from clothparse.datasets.prepare import prepare
from clothparse.datasets.store import resize_image
from clothparse.profiles import load_profile

H, W = 48, 32
SIZE = (32, 32)
DRESS, JUMPSUIT = "10", "11"   # iMaterialist category ids


def write_photo(path: Path, seed: int) -> np.ndarray:
    """A noise JPEG (so its scan data is most of the file) and the pixels it decodes to."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path, quality=90)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header survives: only decoding the pixels fails


def profile(tmp_path: Path, kind: str, root: Path):
    return load_profile({"name": "prep", "data": {"kind": kind, "root": str(root), "refine": False},
                         "size": list(SIZE), "device": "cpu", "split": {"fractions": [0.5, 0.25, 0.25], "seed": 0},
                         "work_dir": str(tmp_path / "work"), "runs_dir": str(tmp_path / "runs")})


@pytest.fixture
def im_source(tmp_path):
    """a..e.jpg dresses, f.jpg a jumpsuit (the reader skips it), e.jpg truncated (the store build skips it)."""
    dress = np.zeros((H, W), bool)
    dress[10:40, 5:28] = True
    rows = [(f"{k}.jpg", rle.encode(dress), H, W, DRESS) for k in "abcde"]
    rows.append(("f.jpg", rle.encode(dress), H, W, JUMPSUIT))
    root = make_dataset(tmp_path / "im", rows, {f"{k}.jpg": {"size": (H, W)} for k in "abcdef"})
    for seed, k in enumerate("abcdef"):
        write_photo(root / "train" / f"{k}.jpg", seed)
    truncate(root / "train" / "e.jpg")
    return root


def test_prepared_counts_what_the_reader_and_the_store_skipped(tmp_path, im_source):
    prepared = prepare(profile(tmp_path, "imaterialist", im_source), variant="base", progress=False)
    assert prepared.store.image_ids == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert (prepared.n_source_images, prepared.n_skipped) == (6, 2)
    assert prepared.skips_path == prepared.store.path / "meta.json" and prepared.skips_path.is_file()
    skipped = prepared.store.skipped().set_index("image_id")
    assert skipped.loc["f.jpg", "stage"] == "reader" and skipped.loc["f.jpg", "reason"].startswith("jumpsuit:")
    assert skipped.loc["e.jpg", "stage"] == "store"
    assert f"{im_source / 'train' / 'e.jpg'}: cannot decode image" in skipped.loc["e.jpg", "reason"]
    # the profile does not refine: the refined variant is the base data, counted the same way
    refined = prepare(profile(tmp_path, "imaterialist", im_source), variant="refined", progress=False)
    assert refined.store.path == prepared.store.path and (refined.n_source_images, refined.n_skipped) == (6, 2)
    assert refined.notes == ["profile does not refine: the refined variant is the base data"]


def test_unchanged_source_reuses_the_store(tmp_path, im_source):
    P = profile(tmp_path, "imaterialist", im_source)
    first = prepare(P, variant="base", progress=False)
    stamp = (first.store.path / "COMPLETE").stat().st_mtime_ns
    (im_source / "notes.txt").write_text("a file no reader reads")
    again = prepare(P, variant="base", progress=False)
    assert again.store.path == first.store.path
    assert (again.store.path / "COMPLETE").stat().st_mtime_ns == stamp


def test_a_repaired_photo_gives_a_new_store_holding_it(tmp_path, im_source):
    P = profile(tmp_path, "imaterialist", im_source)
    old = prepare(P, variant="base", progress=False)
    pixels = write_photo(im_source / "train" / "e.jpg", seed=4)  # the repair
    # The image set changed, so the split file written for the old one refuses, naming itself.
    split = P.work_path / "split.csv"
    with pytest.raises(ValueError, match=f"{split} does not match the dataset: 1 dataset image"):
        prepare(P, variant="base", progress=False)
    split.unlink()
    new = prepare(P, variant="base", progress=False)
    assert new.store.key != old.store.key and old.store.path.is_dir()
    assert new.store.image_ids == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
    np.testing.assert_array_equal(new.store.images[4], resize_image(pixels, SIZE))
    assert (new.n_source_images, new.n_skipped) == (6, 1)
    np.testing.assert_array_equal(new.store.images[:4], old.store.images)


def test_a_touched_photo_gives_a_new_key(tmp_path, im_source):
    P = profile(tmp_path, "imaterialist", im_source)
    old = prepare(P, variant="base", progress=False)
    photo = im_source / "train" / "b.jpg"
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    new = prepare(P, variant="base", progress=False)
    assert new.store.key != old.store.key and new.store.image_ids == old.store.image_ids


def test_what_the_fingerprint_covers(tmp_path, im_source):
    stamps = {row[0] for row in imaterialist_stamps(im_source)}
    assert stamps == {"train.csv", "label_descriptions.json"} | {f"train/{k}.jpg" for k in "abcdef"}
    skirt = NAMES.index("skirt")
    labels = np.full((H, W), skirt, np.uint8)
    root = write_ccp(tmp_path / "ccp", items={"0001": (labels, (H, W)), "0002": (None, (H, W))})
    # 0002 has no pixel-level annotation, so the reader never reads its photo
    assert [row[0] for row in ccp_stamps(root)] == ["annotations/pixel-level/0001.mat", "label_list.mat",
                                                   "photos/0001.jpg"]


def test_ccp_repaired_photo_gives_a_new_store(tmp_path):
    skirt = NAMES.index("skirt")
    labels = np.zeros((H, W), np.uint8)
    labels[10:40, 5:28] = skirt
    root = write_ccp(tmp_path / "ccp", items={f"{k:04d}": (labels, (H, W)) for k in range(1, 6)})
    for k in range(1, 6):
        write_photo(root / "photos" / f"{k:04d}.jpg", seed=k)
    truncate(root / "photos" / "0003.jpg")
    P = profile(tmp_path, "ccp", root)
    old = prepare(P, variant="base", progress=False)
    assert "0003.jpg" not in old.store.image_ids and (old.n_source_images, old.n_skipped) == (5, 1)
    assert "cannot decode image" in dict(old.store.meta["skipped"]["store"])["0003.jpg"]
    assert prepare(P, variant="base", progress=False).store.path == old.store.path
    pixels = write_photo(root / "photos" / "0003.jpg", seed=3)
    (P.work_path / "split.csv").unlink()
    new = prepare(P, variant="base", progress=False)
    assert new.store.key != old.store.key and new.n_skipped == 0
    np.testing.assert_array_equal(new.store.images[new.store.positions(["0003.jpg"])[0]], resize_image(pixels, SIZE))


def test_bad_sources_give_errors_naming_the_file(tmp_path, im_source):
    with pytest.raises(FileNotFoundError, match=r"imaterialist data folder not found: .*nowhere \(profile 'prep'"):
        prepare(profile(tmp_path, "imaterialist", tmp_path / "nowhere"), progress=False)
    for k in "abcd":
        truncate(im_source / "train" / f"{k}.jpg")
    with pytest.raises(ValueError, match=r"no image of the dataset \(imaterialist:.*\) could be stored; first reasons"):
        prepare(profile(tmp_path, "imaterialist", im_source), progress=False)
    (im_source / "train.csv").write_text("ImageId,Height\nx.jpg,3\n")
    with pytest.raises(ValueError, match=f"{im_source / 'train.csv'}: missing columns"):
        prepare(profile(tmp_path, "imaterialist", im_source), progress=False)


def test_maskrcnn_detector_gets_the_resolved_device(tmp_path, monkeypatch):
    import torch

    from clothparse import refine
    from clothparse.datasets import prepare as prep

    seen = []
    monkeypatch.setattr(refine, "MaskRCNNDetector", lambda device: seen.append(device))  # no model is built
    P = load_profile({"name": "det", "data": {"kind": "synthetic", "detector": "maskrcnn"}, "device": "auto"})
    prep.make_detector(P, tmp_path)
    assert seen == ["cuda" if torch.cuda.is_available() else "cpu"]
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            prep.make_detector(P.replace({"device": "cuda"}), tmp_path)
        assert len(seen) == 1
