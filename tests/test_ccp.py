"""CCP reader on the real Clothing Co-Parsing data (skipped when absent), plus hand-made broken inputs."""
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from clothparse.categories import CLASSES
from clothparse.datasets import open_dataset
from clothparse.datasets.ccp import CCP, read_label_names

REPO = Path(__file__).resolve().parents[1]
CCP_ROOT = Path(os.environ.get("CLOTHPARSE_CCP_ROOT", REPO.parent / "shared" / "data" / "ccp"))
needs_ccp = pytest.mark.skipif(not (CCP_ROOT / "label_list.mat").is_file(),
                               reason=f"CCP data not found at {CCP_ROOT} (set CLOTHPARSE_CCP_ROOT)")

# The mapping written out again from ../shared/data/README.md, independently of clothparse.categories.CCP_MERGE.
README_MAPPING = {
    "top": "blouse shirt t-shirt top sweatshirt hoodie",
    "overtop": "sweater cardigan jacket vest coat blazer jumper",
    "pants": "pants jeans leggings",
    "shorts": "shorts", "skirt": "skirt", "dress": "dress",
    "shoe": "shoes boots heels flats pumps sandals sneakers loafers clogs wedges",
    "bag": "bag purse wallet",
}
NAME_TO_CLASS = {n: CLASSES.index(c) for c, names in README_MAPPING.items() for n in names.split()}
KEPT = ["0001.jpg", "0003.jpg", "0033.jpg"]   # 0033 has shorts; 0003 has top, overtop, pants, dress, shoe, bag
ROMPER, SUIT = "0024.jpg", "0008.jpg"


def raw_histogram(stem: str, suit_to_background: bool = True) -> np.ndarray:
    """9-class pixel histogram straight from the .mat labels and label_list.mat names."""
    names = [str(np.ravel(c)[0]) for c in scipy.io.loadmat(str(CCP_ROOT / "label_list.mat"))["label_list"].ravel()]
    labels = scipy.io.loadmat(str(CCP_ROOT / "annotations" / "pixel-level" / f"{stem}.mat"))["groundtruth"]
    counts = np.bincount(labels.ravel(), minlength=len(names))
    hist = np.zeros(len(CLASSES), np.int64)
    for value, n in enumerate(counts):
        hist[NAME_TO_CLASS.get(names[value], 0)] += n
    return hist


@needs_ccp
def test_three_images_match_raw_labels():
    ds = CCP(CCP_ROOT, image_ids=[*KEPT, ROMPER, SUIT])
    assert ds.image_ids == KEPT
    assert ds.skipped.counts() == {"romper": 1, "suit": 1}
    assert dict(ds.skipped.entries)[ROMPER].startswith("romper: label 'romper' covers")
    for i, image_id in enumerate(KEPT):
        sample = ds[i]
        assert sample.image_id == image_id
        assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == sample.image.shape[:2]
        with Image.open(CCP_ROOT / "photos" / image_id) as im:
            assert sample.image.shape[:2] == (im.height, im.width)
        hist = np.bincount(sample.mask.ravel(), minlength=len(CLASSES))
        expected = raw_histogram(Path(image_id).stem)
        np.testing.assert_array_equal(hist, expected)
        assert sample.classes == tuple(int(k) for k in np.flatnonzero(expected[1:]) + 1) == ds.classes_of(i)
        np.testing.assert_array_equal(ds.mask_of(i), sample.mask)
    assert CLASSES.index("shorts") in ds.classes_of(2)


@needs_ccp
def test_suit_as_background():
    ds = CCP(CCP_ROOT, suit="background", image_ids=[SUIT, ROMPER])
    assert ds.image_ids == [SUIT] and ds.skipped.counts() == {"romper": 1}
    hist = np.bincount(ds.mask_of(0).ravel(), minlength=len(CLASSES))
    np.testing.assert_array_equal(hist, raw_histogram("0008"))  # suit is not in the mapping → background
    names = ds.label_names
    assert (ds.labels_of(0) == names.index("suit")).sum() > 0


@needs_ccp
def test_no_exclusion_keeps_the_romper_image():
    ds = CCP(CCP_ROOT, exclude=(), image_ids=[ROMPER])
    assert ds.image_ids == [ROMPER]
    np.testing.assert_array_equal(np.bincount(ds.mask_of(0).ravel(), minlength=9), raw_histogram("0024"))


@needs_ccp
def test_whole_folder_counts():
    ds = open_dataset("ccp", CCP_ROOT)
    assert len(ds) + len(ds.skipped) == 804
    assert ds.skipped.counts() == {"romper": 14, "suit": 71}
    assert len(ds) == 719 and ds.image_ids == sorted(ds.image_ids)


@needs_ccp
def test_label_names():
    names = read_label_names(CCP_ROOT / "label_list.mat")
    assert len(names) == 59 and names[0] == "null" and names[35] == "romper" and names[46] == "suit"


# --- broken inputs, written by hand ----------------------------------------------------------------------------
NAMES = ["null", "skin", "romper", "suit"] + sorted(NAME_TO_CLASS)


def write_ccp(root: Path, names=NAMES, items: dict | None = None):
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    cell = np.empty((1, len(names)), dtype=object)
    for k, n in enumerate(names):
        cell[0, k] = np.array([n])
    scipy.io.savemat(str(root / "label_list.mat"), {"label_list": cell})
    for stem, (labels, photo_size) in (items or {}).items():
        if labels is not None:
            scipy.io.savemat(str(root / "annotations" / "pixel-level" / f"{stem}.mat"), {"groundtruth": labels})
        if photo_size is not None:
            Image.new("RGB", photo_size[::-1], (10, 20, 30)).save(root / "photos" / f"{stem}.jpg")
    return root


def test_handmade_dataset(tmp_path):
    skirt, skin = NAMES.index("skirt"), NAMES.index("skin")
    good = np.array([[skirt, skirt, skin], [0, skirt, 0]], np.uint8)
    items = {
        "0001": (good, (2, 3)),
        "0002": (good, (3, 3)),                                    # size mismatch
        "0003": (good, None),                                      # no photo
        "0004": (np.full((2, 3), 200, np.uint8), (2, 3)),          # label value outside label_list
        "0005": (None, (2, 3)),                                    # photo without annotation: not an item
    }
    ds = CCP(write_ccp(tmp_path / "ccp", items=items))
    assert ds.image_ids == ["0001.jpg"]
    assert ds.skipped.counts() == {"size-mismatch": 1, "missing-image": 1, "bad-annotation": 1}
    reasons = dict(ds.skipped.entries)
    assert reasons["0002.jpg"] == "size-mismatch: 0002.mat is 2×3, 0002.jpg is 3×3"
    assert "0004.mat: label value 200 outside label_list.mat" in reasons["0004.jpg"]
    sample = ds[0]
    np.testing.assert_array_equal(sample.mask, [[5, 5, 0], [0, 5, 0]])
    assert sample.classes == (CLASSES.index("skirt"),) and sample.image.shape == (2, 3, 3)
    with pytest.raises(IndexError):
        ds[1]


def test_missing_label_name_is_an_error(tmp_path):
    root = write_ccp(tmp_path / "ccp", names=[n for n in NAMES if n != "shorts"])
    with pytest.raises(ValueError, match=r"lacks labels that CCP_MERGE maps: \['shorts \(shorts\)'\]"):
        CCP(root)


def test_bad_arguments(tmp_path):
    root = write_ccp(tmp_path / "ccp")
    with pytest.raises(ValueError, match="suit must be one of"):
        CCP(root, suit="overtop")
    with pytest.raises(ValueError, match=r"lacks labels \['jumpsuit'\]"):
        CCP(root, exclude=("jumpsuit",))
    with pytest.raises(ValueError, match="no pixel-level annotation"):
        CCP(root, image_ids=["0001.jpg"])
    with pytest.raises(FileNotFoundError, match="CCP folder not found"):
        CCP(tmp_path / "nowhere")
