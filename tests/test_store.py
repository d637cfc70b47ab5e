import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from clothparse.datasets.base import Sample, SkipReport
from clothparse.datasets.store import Store, StoreError, build_store, open_store, store_key
from clothparse.masks import classes_present

SIZE = (16, 12)  # H × W, tiny to keep the test fast


class ListDataset:
    """A dataset held in memory (plain class: picklable for build workers).

    ``fail`` maps an index to the exception its item raises, as a reader does for a bad file."""

    def __init__(self, samples, fail=None, source="test-list", ids=None):
        self.samples = list(samples)
        self.ids = ids
        self.fail = dict(fail or {})
        self.source = source
        self.skipped = SkipReport()
        self.skipped.add("gone.jpg", "no annotation: not in train.csv")

    @property
    def image_ids(self):
        return self.ids if self.ids is not None else [s.image_id for s in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        if i in self.fail:
            raise self.fail[i]
        return self.samples[i]


def make_samples(shapes, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k, (h, w) in enumerate(shapes):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1 + k % 8   # one garment block
        mask[-2:, :] = 7                                               # shoes along the bottom
        mask[0, 0] = 8                                                 # a 1-pixel bag: may vanish
        out.append(Sample(image, mask, f"img{k:03d}.jpg", classes_present(mask)))
    return out


SHAPES = [(40, 30), (33, 21), (10, 8), (16, 12), (30, 10)]  # shrink, shrink, grow, same, mixed


def expected_image(image, size):
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = image.shape[0] >= h and image.shape[1] >= w
    resample = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize((w, h), resample))


def test_store_holds_the_resized_dataset(tmp_path):
    samples = make_samples(SHAPES)
    store = build_store(ListDataset(samples), tmp_path, size=SIZE, workers=0, progress=False)
    assert store.path.parent == tmp_path and (store.path / "COMPLETE").exists()
    assert len(store) == 5 and store.images.shape == (5, 16, 12, 3) and store.masks.shape == (5, 16, 12)
    assert store.images.dtype == np.uint8 and store.masks.dtype == np.uint8
    assert store.image_ids == [s.image_id for s in samples]
    for i, s in enumerate(samples):
        image, mask = store[i]
        np.testing.assert_array_equal(image, expected_image(s.image, SIZE))
        assert set(np.unique(mask)) <= set(np.unique(s.mask))
        assert store.classes[i] == s.classes                        # from the original mask
        assert store.classes_resized[i] == classes_present(mask)    # from the stored mask
    # an upscaled mask keeps every class; the 1-pixel bag cannot survive the 40×30 → 16×12 shrink
    assert 8 in store.classes_resized[2] and 8 not in store.classes_resized[0]
    np.testing.assert_array_equal(store.masks[3], samples[3].mask)  # same size: stored as is
    assert store.meta["n"] == 5 and store.meta["size"] == [16, 12]
    assert store.meta["skipped"]["reader"] == [["gone.jpg", "no annotation: not in train.csv"]]
    assert store.meta["classes_lost_in_resize"] >= 1
    assert store.index.columns.tolist() == ["i", "image_id", "classes", "classes_resized"]


def test_meta_json_is_written_atomically_by_the_one_writer(tmp_path, monkeypatch):
    """``meta.json`` goes through :func:`clothparse.keyed.write_json` (temp file + rename): no ``.tmp`` is left
    and the file holds the meta the build returned."""
    from clothparse import keyed
    from clothparse.datasets import store as store_module

    written = []

    def spy(path, obj):
        written.append(path.name)
        keyed.write_json(path, obj)

    monkeypatch.setattr(store_module, "write_json", spy)
    store = build_store(ListDataset(make_samples(SHAPES)), tmp_path, size=SIZE, workers=0, progress=False)
    assert "meta.json" in written
    assert not list(tmp_path.rglob("*.tmp"))
    assert json.loads((store.path / "meta.json").read_text()) == store.meta
    assert store.meta["created"] == json.loads((store.path / "COMPLETE").read_text())["created"]


def test_store_key_is_keyed_stable_hash_of_its_inputs():
    """The store's key is the one hash rule of :mod:`clothparse.keyed` (full length) over its inputs."""
    from clothparse.datasets.store import FORMAT_VERSION, _ids_digest
    from clothparse.keyed import stable_hash

    payload = {"format": FORMAT_VERSION, "source": "s", "refinement": None, "size": [32, 16],
               "image_ids": _ids_digest(["a", "b"])}
    assert store_key("s", None, (32, 16), ["a", "b"]) == stable_hash(payload, length=64)


def test_store_key_depends_on_every_input():
    ids = ["a", "b"]
    base = store_key("synthetic:seed=0", None, (288, 192), ids)
    assert base == store_key("synthetic:seed=0", None, [288, 192], ids)
    assert len({base,
                store_key("synthetic:seed=0", None, (320, 224), ids),
                store_key("synthetic:seed=1", None, (288, 192), ids),
                store_key("synthetic:seed=0", "person-crop", (288, 192), ids),
                store_key("synthetic:seed=0", None, (288, 192), ["a"]),
                store_key("synthetic:seed=0", None, (288, 192))}) == 6


def test_finished_store_is_reused_not_rebuilt(tmp_path):
    ds = ListDataset(make_samples(SHAPES[:3]))
    first = build_store(ds, tmp_path, size=SIZE, workers=0, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()}
    second = build_store(ds, tmp_path, size=SIZE, workers=0, progress=False)
    assert second.path == first.path
    assert {p.name: p.stat().st_mtime_ns for p in second.path.iterdir()} == stamps
    other = build_store(ds, tmp_path, size=(8, 6), workers=0, progress=False)
    assert other.path != first.path and other.images.shape == (3, 8, 6, 3)
    assert open_store(tmp_path, first.key).image_ids == first.image_ids


def test_interrupted_build_leaves_nothing_finished_and_is_redone(tmp_path):
    samples = make_samples(SHAPES)
    broken = ListDataset(samples, fail={3: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        build_store(broken, tmp_path, size=SIZE, workers=0, progress=False)
    assert not list(tmp_path.rglob("COMPLETE"))
    key = store_key("test-list", None, SIZE, broken.image_ids)
    assert not (tmp_path / key).exists()
    # a build killed hard leaves its tmp folder behind; the next build removes it
    stale = tmp_path / f"{key}.tmp-999999999"
    stale.mkdir()
    (stale / "images.full.npy").write_bytes(b"partial")
    store = build_store(ListDataset(samples), tmp_path, size=SIZE, workers=0, progress=False)
    assert store.path.name == key and len(store) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [key]
    np.testing.assert_array_equal(store.images[4], expected_image(samples[4].image, SIZE))


def test_unreadable_items_are_skipped_and_reported(tmp_path):
    samples = make_samples(SHAPES)
    bad_mask = samples[3]._replace(mask=np.zeros((5, 5), np.uint8))   # mask and image differ in size
    samples[3] = bad_mask
    ds = ListDataset(samples, fail={1: OSError("image file is truncated")})
    store = build_store(ds, tmp_path, size=SIZE, workers=0, progress=False)
    assert store.image_ids == ["img000.jpg", "img002.jpg", "img004.jpg"]
    for row, k in enumerate((0, 2, 4)):
        np.testing.assert_array_equal(store.images[row], expected_image(samples[k].image, SIZE))
    assert store.meta["n"] == 3 and store.meta["n_dataset"] == 5
    reasons = dict(store.meta["skipped"]["store"])
    assert reasons["img001.jpg"] == "OSError: image file is truncated"
    assert "differ in size" in reasons["img003.jpg"]
    assert store.skipped()["stage"].tolist() == ["reader", "store", "store"]
    with pytest.raises(KeyError, match="img001.jpg"):
        store.positions(["img000.jpg", "img001.jpg"])
    assert store.positions(["img004.jpg", "img000.jpg"]).tolist() == [2, 0]


def test_worker_processes_give_the_same_store(tmp_path):
    ds = ListDataset(make_samples(SHAPES * 8, seed=1), fail={7: ValueError("bad RLE")})
    serial = build_store(ds, tmp_path / "serial", size=SIZE, workers=0, progress=False)
    parallel = build_store(ds, tmp_path / "parallel", size=SIZE, workers=2, progress=False)
    assert parallel.key == serial.key and len(parallel) == 39
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.masks, serial.masks)
    assert parallel.index.equals(serial.index)
    assert parallel.meta["skipped"]["store"] == [["img007.jpg", "ValueError: bad RLE"]]


class TakeOnlyDataset(ListDataset):
    """A dataset with ``take``, which refuses to be pickled whole: a build must send workers only parts."""

    def take(self, indices):
        return TakeOnlyDataset([self.samples[i] for i in indices], source=self.source)

    def __getstate__(self):
        if len(self.samples) > 16:  # more than one chunk: the whole dataset
            raise pickle.PicklingError("the whole dataset must not travel to the workers")
        return self.__dict__


def test_workers_get_their_chunks_not_the_whole_dataset(tmp_path):
    samples = make_samples(SHAPES * 8, seed=2)
    serial = build_store(ListDataset(samples), tmp_path / "serial", size=SIZE, workers=0, progress=False)
    parallel = build_store(TakeOnlyDataset(samples), tmp_path / "parallel", size=SIZE, workers=2, progress=False)
    assert len(parallel) == len(samples) > 16
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.masks, serial.masks)
    assert parallel.index.equals(serial.index)


def test_store_pickles_by_path_and_refuses_incomplete_folders(tmp_path):
    store = build_store(ListDataset(make_samples(SHAPES)), tmp_path, size=SIZE, workers=0, progress=False)
    blob = pickle.dumps(store)
    assert len(blob) < store.images.nbytes  # the memmaps are reopened, not copied
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.images, store.images)
    os.remove(store.path / "COMPLETE")
    with pytest.raises(StoreError, match="no COMPLETE marker"):
        Store(store.path)


def test_a_reader_returning_the_wrong_image_fails_the_build(tmp_path):
    samples = make_samples(SHAPES)
    ds = ListDataset(samples, ids=[s.image_id for s in samples])
    ds.samples[2] = samples[2]._replace(image_id="someone-else.jpg")
    with pytest.raises(RuntimeError, match="item 2 has image_id 'someone-else.jpg'"):
        build_store(ds, tmp_path, size=SIZE, workers=0, progress=False)
    assert not list(tmp_path.rglob("COMPLETE"))


def test_complete_marker_holds_the_key_and_a_foreign_one_is_rebuilt(tmp_path):
    import json

    ds = ListDataset(make_samples(SHAPES[:3]))
    store = build_store(ds, tmp_path, size=SIZE, workers=0, progress=False)
    marker = json.loads((store.path / "COMPLETE").read_text())
    assert marker["key"] == store.key == store.path.name and marker["n"] == 3
    # A marker that does not hold the key (an older store's timestamp, a torn write): still readable,
    # but a build does not trust it and rebuilds the folder.
    (store.path / "COMPLETE").write_text("2024-01-01T00:00:00+00:00\n")
    assert len(Store(store.path)) == 3
    again = build_store(ds, tmp_path, size=SIZE, workers=0, progress=False)
    assert again.path == store.path and json.loads((again.path / "COMPLETE").read_text())["key"] == again.key
    np.testing.assert_array_equal(again.images, store.images)
    assert sorted(p.name for p in tmp_path.iterdir()) == [store.key]
