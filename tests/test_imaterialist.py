"""iMaterialist reader: the merge/overlap rule on hand-built masks, and skips/repairs on a tiny hand-written dataset."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clothparse import rle
from clothparse.categories import CLASSES, imaterialist_category_map
from clothparse.datasets import open_dataset
from clothparse.datasets.imaterialist import IMaterialist, resize_nearest, semantic_mask

from conftest import label_descriptions_path

REPO = Path(__file__).resolve().parents[1]
TOP, OVERTOP, PANTS, SKIRT, DRESS, SHOE, BAG = (CLASSES.index(c) for c in
                                                ("top", "overtop", "pants", "skirt", "dress", "shoe", "bag"))
# iMaterialist category ids (label_descriptions.json)
SHIRT, TSHIRT, COAT, PANTS_ID, SKIRT_ID, DRESS_ID, JUMPSUIT, HAT, BELT, SHOE_ID, BAG_ID, SLEEVE, ZIPPER = (
    0, 1, 9, 6, 8, 10, 11, 14, 19, 23, 24, 31, 35)


@pytest.fixture(scope="module")
def cmap():
    return imaterialist_category_map(label_descriptions_path())


def box(shape, r0, r1, c0, c1):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


# --- the merge / overlap rule ----------------------------------------------------------------------------------
def test_smaller_garment_lies_on_top(cmap):
    coat, bag = box((6, 6), 0, 6, 0, 6), box((6, 6), 2, 4, 2, 4)
    for instances in ([(COAT, coat), (BAG_ID, bag)], [(BAG_ID, bag), (COAT, coat)]):
        out = semantic_mask(instances, cmap)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, np.where(bag, BAG, OVERTOP))


def test_three_way_overlap(cmap):
    shape = (5, 8)
    dress, tshirt, bag = box(shape, 0, 5, 0, 6), box(shape, 0, 3, 1, 5), box(shape, 2, 4, 4, 8)  # 30, 12, 8 px
    out = semantic_mask([(TSHIRT, tshirt), (DRESS_ID, dress), (BAG_ID, bag)], cmap)
    expected = np.zeros(shape, np.uint8)
    expected[dress] = DRESS
    expected[tshirt] = TOP
    expected[bag] = BAG
    np.testing.assert_array_equal(out, expected)


def test_tie_puts_the_earlier_instance_on_top(cmap):
    a, b = box((4, 4), 0, 2, 0, 4), box((4, 4), 1, 3, 0, 4)  # 8 pixels each, overlapping in row 1
    assert semantic_mask([(SHIRT, a), (PANTS_ID, b)], cmap)[1].tolist() == [TOP] * 4
    assert semantic_mask([(PANTS_ID, b), (SHIRT, a)], cmap)[1].tolist() == [PANTS] * 4


def test_parts_never_overwrite_a_garment(cmap):
    shirt, sleeve, zipper = box((6, 6), 0, 4, 1, 5), box((6, 6), 0, 6, 0, 2), box((6, 6), 1, 3, 3, 4)
    out = semantic_mask([(SHIRT, shirt), (SLEEVE, sleeve), (ZIPPER, zipper)], cmap)
    # The sleeve is smaller than nothing here, but even where it sticks out of the shirt it is background.
    np.testing.assert_array_equal(out, np.where(shirt, TOP, 0))


def test_non_garments_are_background_and_do_not_erase(cmap):
    dress, belt, hat = box((8, 4), 1, 8, 0, 4), box((8, 4), 3, 4, 0, 4), box((8, 4), 0, 2, 1, 3)
    out = semantic_mask([(DRESS_ID, dress), (BELT, belt), (HAT, hat)], cmap)
    np.testing.assert_array_equal(out, np.where(dress, DRESS, 0))
    assert semantic_mask([(BELT, belt)], cmap).max() == 0


def test_semantic_mask_errors(cmap):
    m = box((3, 3), 0, 1, 0, 1)
    with pytest.raises(ValueError, match="excluded category 11"):
        semantic_mask([(SHIRT, m), (JUMPSUIT, m)], cmap)
    with pytest.raises(ValueError, match="unknown category id 99"):
        semantic_mask([(99, m)], cmap)
    with pytest.raises(ValueError, match=r"instance 1 has shape \(2, 3\)"):
        semantic_mask([(SHIRT, m), (SHIRT, np.zeros((2, 3), bool))], cmap)
    with pytest.raises(ValueError, match="no instances and no shape"):
        semantic_mask([], cmap)
    assert semantic_mask([], cmap, shape=(2, 5)).tolist() == [[0] * 5] * 2


def test_resize_nearest():
    m = np.array([[1, 2], [3, 4]], np.uint8)
    np.testing.assert_array_equal(resize_nearest(m, 4, 4), np.kron(m, np.ones((2, 2), np.uint8)))
    np.testing.assert_array_equal(resize_nearest(np.kron(m, np.ones((3, 3), np.uint8)), 2, 2), m)


# --- a tiny dataset in the Kaggle layout ------------------------------------------------------------------------
H, W = 6, 4


def write_image(path: Path, size=(H, W), mode="RGB", exif_orientation=None):
    im = Image.new(mode, (size[1], size[0]), color=(200, 30, 30) if mode == "RGB" else 128)
    kw = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif
    im.save(path, quality=95, **kw)


def make_dataset(root: Path, rows: list[tuple], images: dict[str, dict]):
    (root / "train").mkdir(parents=True)
    (root / "label_descriptions.json").write_text(label_descriptions_path().read_text(encoding="utf-8"))
    for name, kw in images.items():
        write_image(root / "train" / name, **kw)
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width", "ClassId"]).to_csv(
        root / "train.csv", index=False)
    return root


DRESS_M = box((H, W), 1, 6, 0, 4)
BAG_M = box((H, W), 3, 5, 2, 4)
BELT_M = box((H, W), 2, 3, 0, 4)


@pytest.fixture
def tiny(tmp_path):
    e = rle.encode
    rows = [  # CSV line = list index + 2
        ("a.jpg", e(DRESS_M), H, W, "10_3_45"),        # line 2
        ("a.jpg", e(BELT_M), H, W, "19"),              # line 3
        ("a.jpg", e(BAG_M), H, W, "24"),               # line 4
        ("a.jpg", e(DRESS_M), H, W, "31_5"),           # line 5: sleeve over all of the dress
        ("b.jpg", e(DRESS_M), H, W, "11"),             # line 6: jumpsuit
        ("c.jpg", e(DRESS_M), H, W, "6"),              # line 7
        ("c.jpg", e(BAG_M), H, W, "99"),               # line 8: unknown category
        ("d.jpg", e(DRESS_M), H, W, "6"),              # line 9
        ("d.jpg", "1 2 3", H, W, "31"),                # line 10: malformed RLE (odd tokens), even on a part
        ("e.jpg", e(DRESS_M), H, W, "6"),              # line 11: no image file
        ("f.jpg", e(DRESS_M), H, W, "x_1"),            # line 12: malformed ClassId
        ("g.jpg", e(DRESS_M), "abc", W, "6"),          # line 13: malformed Height
        ("h.jpg", e(BAG_M), H, W, "6"),                # line 14
        ("h.jpg", e(BAG_M), H, W + 1, "24"),           # line 15: rows disagree on the size
        ("i.jpg", e(BAG_M), H, W, "1"),                # line 16: top, then bag with the same mask: top wins the tie
        ("i.jpg", e(BAG_M), H, W, "24"),               # line 17
        ("j.jpg", "", H, W, "23"),                     # line 18: empty RLE (a shoe with no pixels)
        ("j.jpg", e(BAG_M), H, W, "7"),                # line 19
        ("k.jpg", e(BAG_M), H, W, "8"),                # line 20: JPEG that cannot be read
    ]
    images = {n: {} for n in "a b c d f g h i j".split()}
    images = {f"{k}.jpg": v for k, v in images.items()}
    images["a.jpg"] = {"mode": "L"}  # grayscale file: the reader must return RGB
    root = make_dataset(tmp_path / "im", rows, images)
    (root / "train" / "k.jpg").write_bytes(b"not a jpeg")
    return root


def test_tiny_dataset_items_and_skips(tiny):
    ds = IMaterialist(tiny)
    assert ds.image_ids == ["a.jpg", "i.jpg", "j.jpg"]  # sorted ImageId order
    assert len(ds) == 3 and len(ds.repaired) == 0
    assert ds.skipped.counts() == {"jumpsuit": 1, "unknown-category": 1, "bad-rle": 1, "missing-image": 1,
                                   "malformed": 3, "unreadable-image": 1}
    reasons = dict(ds.skipped.entries)
    assert reasons["b.jpg"].startswith("jumpsuit: train.csv line 6 has category 11 (jumpsuit)")
    assert reasons["c.jpg"] == "unknown-category: train.csv line 8 has category 99, not in label_descriptions.json"
    assert reasons["d.jpg"].startswith("bad-rle: train.csv line 10: RLE has an odd number of tokens (3)")
    assert reasons["e.jpg"].startswith("missing-image:") and reasons["e.jpg"].endswith("e.jpg")
    assert "line 12 has ClassId 'x_1'" in reasons["f.jpg"]
    assert "line 13 has Height 'abc'" in reasons["g.jpg"]
    assert "line 15 gives size 6×5, line 14 gives 6×4" in reasons["h.jpg"]
    assert reasons["k.jpg"].startswith("unreadable-image:") and "k.jpg" in reasons["k.jpg"]


def test_tiny_dataset_masks(tiny):
    ds = open_dataset("imaterialist", tiny)
    sample = ds[0]
    assert sample.image_id == "a.jpg"
    assert sample.image.shape == (H, W, 3) and sample.image.dtype == np.uint8  # grayscale converted to RGB
    expected = np.where(BAG_M, BAG, np.where(DRESS_M, DRESS, 0)).astype(np.uint8)  # belt, sleeve: no effect
    np.testing.assert_array_equal(sample.mask, expected)
    np.testing.assert_array_equal(ds.mask_of(0), expected)
    assert sample.classes == (DRESS, BAG) == ds.classes_of(0) == ds.classes_of(0, exact=True)
    # j: the empty shoe RLE contributes no class, not even from the CSV.
    assert ds.classes_of(2) == (CLASSES.index("shorts"),) == ds[-1].classes


def test_classes_of_csv_vs_exact(tiny):
    # i.jpg: a top and a bag with identical masks; the tie puts the top (earlier row) on top, hiding the bag.
    ds = IMaterialist(tiny)
    assert ds.classes_of(1) == (TOP, BAG)
    assert ds.classes_of(1, exact=True) == (TOP,) == ds[1].classes
    assert ds.classes == [ds.classes_of(i) for i in range(3)]


def test_take_is_a_reader_of_just_those_images(tiny):
    import pickle

    ds = IMaterialist(tiny)
    part = ds.take([2, 0])
    assert part.image_ids == ["j.jpg", "a.jpg"] and len(part) == 2 and len(part.skipped) == 0
    for j, i in enumerate([2, 0]):
        a, b = part[j], ds[i]
        assert a.image_id == b.image_id and a.classes == b.classes == part.classes_of(j)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)
    assert len(ds.take([])) == 0
    # Pickled (what a store worker receives), a part carries only its own images' RLE strings.
    one = pickle.loads(pickle.dumps(ds.take([1])))
    assert one._rle.tolist() == [r for r, k in zip(ds._rle, range(len(ds._rle)))
                                 if ds._offsets[1] <= k < ds._offsets[2]]
    np.testing.assert_array_equal(one[0].mask, ds[1].mask)


def test_index_errors(tiny):
    ds = IMaterialist(tiny)
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(IndexError):
        ds.mask_of(-4)


def test_size_mismatch_is_repaired(tmp_path):
    # The CSV says 6×4 but the file is 12×8 (as for two real Kaggle images): masks are decoded at 6×4 and resized.
    rows = [("big.jpg", rle.encode(BAG_M), H, W, "24"), ("ok.jpg", rle.encode(BAG_M), H, W, "24")]
    root = make_dataset(tmp_path / "im", rows, {"big.jpg": {"size": (2 * H, 2 * W)}, "ok.jpg": {}})
    ds = IMaterialist(root)
    assert len(ds) == 2 and len(ds.skipped) == 0
    assert ds.repaired.entries == [("big.jpg", "size-fixed: csv 6×4, image 12×8; mask resized (nearest)")]
    expected = np.kron(np.where(BAG_M, BAG, 0), np.ones((2, 2))).astype(np.uint8)
    np.testing.assert_array_equal(ds.mask_of(0), expected)
    sample = ds[0]
    assert sample.image.shape == (2 * H, 2 * W, 3)
    np.testing.assert_array_equal(sample.mask, expected)
    # Without header checks the repair is found, and reported once, when the item is read.
    lazy = IMaterialist(root, check_sizes=False)
    assert len(lazy.repaired) == 0 and lazy.mask_of(0).shape == (H, W)
    np.testing.assert_array_equal(lazy[0].mask, expected)
    lazy[0]
    assert lazy.repaired.entries == ds.repaired.entries


def test_exif_orientation_is_not_applied(tmp_path):
    # Orientation 6 would rotate a 6×4 image to 4×6; the Kaggle masks are in stored orientation, so do not.
    rows = [("r.jpg", rle.encode(BAG_M), H, W, "24")]
    root = make_dataset(tmp_path / "im", rows, {"r.jpg": {"exif_orientation": 6}})
    with Image.open(root / "train" / "r.jpg") as im:
        assert im.getexif().get(0x0112) == 6
    ds = IMaterialist(root)
    assert len(ds.repaired) == 0 and ds[0].image.shape == (H, W, 3)


def test_lazy_rle_validation(tmp_path):
    rows = [("a.jpg", rle.encode(DRESS_M), H, W, "10"), ("a.jpg", "5 1 1 1", H, W, "31"),  # bad part: never parsed
            ("b.jpg", "1 0", H, W, "10")]                                                   # bad garment
    root = make_dataset(tmp_path / "im", rows, {"a.jpg": {}, "b.jpg": {}})
    assert IMaterialist(root).skipped.counts() == {"bad-rle": 2}
    ds = IMaterialist(root, validate_rle=False)
    assert len(ds) == 2
    np.testing.assert_array_equal(ds.mask_of(0), np.where(DRESS_M, DRESS, 0))
    with pytest.raises(ValueError, match=r"train.csv line 4 \(b.jpg\): RLE run 0 has length 0"):
        ds.mask_of(1)


def test_undecodable_jpeg_raises_naming_the_file(tmp_path):
    rows = [("a.jpg", rle.encode(DRESS_M), H, W, "10")]
    root = make_dataset(tmp_path / "im", rows, {})
    # A valid JPEG header with the image data cut off: the header check passes, the decode fails.
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.jpg", quality=95)  # noise: the scan data dwarfs the header
    data = (tmp_path / "full.jpg").read_bytes()
    (root / "train" / "a.jpg").write_bytes(data[: len(data) // 2])
    rows = [("a.jpg", rle.encode(box((64, 64), 0, 9, 0, 9)), 64, 64, "10")]
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width", "ClassId"]).to_csv(
        root / "train.csv", index=False)
    ds = IMaterialist(root)
    assert len(ds) == 1
    with pytest.raises(ValueError, match=r"a\.jpg: cannot decode image"):
        ds[0]


def test_layout_errors(tmp_path):
    root = make_dataset(tmp_path / "im", [("a.jpg", "1 1", H, W, "10")], {"a.jpg": {}})
    with pytest.raises(FileNotFoundError, match="annotations not found: .*other.csv"):
        IMaterialist(root, csv_name="other.csv")
    with pytest.raises(FileNotFoundError, match="image folder"):
        IMaterialist(root, image_dir="test")
    pd.DataFrame({"ImageId": ["a.jpg"], "ClassId": ["1"]}).to_csv(root / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"missing columns \['EncodedPixels', 'Height', 'Width'\]"):
        IMaterialist(root)
    (root / "train.csv").write_text("ImageId,EncodedPixels,Height,Width,ClassId\n")
    assert len(IMaterialist(root)) == 0


def test_label_descriptions_argument(tmp_path, cmap):
    rows = [("a.jpg", rle.encode(DRESS_M), H, W, "10")]
    root = make_dataset(tmp_path / "im", rows, {"a.jpg": {}})
    data = json.loads((root / "label_descriptions.json").read_text())
    (root / "label_descriptions.json").unlink()
    for arg in (cmap, data, label_descriptions_path()):
        assert IMaterialist(root, label_descriptions=arg).classes_of(0) == (DRESS,)
    with pytest.raises(FileNotFoundError, match="label_descriptions.json"):
        IMaterialist(root)
