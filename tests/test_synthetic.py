"""Synthetic generator: files vs drawing, determinism, the ground truth it promises, folder reuse."""
import csv
import json
import os
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from clothparse import rle
from clothparse.categories import NUM_CLASSES, imaterialist_category_map
from clothparse.datasets.synthetic import class_id_string, default_label_descriptions, draw_image, generate, image_id
from clothparse.masks import classes_present

H, W, N, SEED, JUMPSUIT = 96, 64, 24, 3, 0.1
CMAP = imaterialist_category_map(default_label_descriptions())


def _kind(cid):
    if cid in CMAP.excluded_ids:
        return "jumpsuit"
    if cid in CMAP.part_ids:
        return "part"
    return "garment" if CMAP.to_class[cid] > 0 else "other"


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _smallest_on_top(instances, shape):
    """The reader's rule, written independently: kept garments only, fewer pixels on top."""
    garments = [(int(m.sum()), CMAP.to_class[c], m) for c, m in instances if _kind(c) == "garment"]
    out = np.zeros(shape, np.uint8)
    for _, cls, m in sorted(garments, key=lambda t: -t[0]):
        out[m] = cls
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "ds"
    out = generate(root, n_images=N, height=H, width=W, seed=SEED, jumpsuit_share=JUMPSUIT, progress=False)
    assert out == root
    return root


@pytest.fixture(scope="module")
def drawn():
    return [draw_image(SEED, i, height=H, width=W, jumpsuit_share=JUMPSUIT) for i in range(N)]


def test_csv_decodes_to_the_drawn_instances(dataset, drawn):
    rows = defaultdict(list)
    for r in _read_csv(dataset / "train.csv"):
        rows[r["ImageId"]].append(r)
    assert sorted(rows) == sorted(d.image_id for d in drawn)
    assert len(os.listdir(dataset / "train")) == N
    for d in drawn:
        got = rows[d.image_id]
        assert len(got) == len(d.instances)
        for r, inst in zip(got, d.instances):
            assert (int(r["Height"]), int(r["Width"])) == (H, W)
            assert r["ClassId"] == class_id_string(inst)
            np.testing.assert_array_equal(rle.decode(r["EncodedPixels"], H, W), inst.mask)
            assert inst.mask.any()
        with Image.open(dataset / "train" / d.image_id) as im:
            assert im.format == "JPEG"
            img = np.asarray(im.convert("RGB"), dtype=np.int16)
        assert img.shape == (H, W, 3)
        assert np.abs(img - d.image).mean() < 6  # the JPEG of the drawn image
    assert json.loads((dataset / "GENERATOR.json").read_text())["complete"] is True
    assert (dataset / "label_descriptions.json").read_bytes() == default_label_descriptions().read_bytes()


def test_reader_rule_reproduces_the_painted_classes(drawn):
    overlapping = 0
    for d in drawn:
        assert d.semantic.shape == (H, W) and d.semantic.max() < NUM_CLASSES
        if d.kind == "jumpsuit":
            continue
        insts = [(x.category, x.mask) for x in d.instances]
        np.testing.assert_array_equal(_smallest_on_top(insts, (H, W)), d.semantic)
        garments = [x for x in d.instances if _kind(x.category) == "garment"]
        assert {CMAP.to_class[g.category] for g in garments} == set(classes_present(d.semantic))
        pairs = [(a, b) for i, a in enumerate(garments) for b in garments[i + 1:] if (a.mask & b.mask).any()]
        for a, b in pairs:   # no ties between overlapping garments: the rule's order is never ambiguous
            assert a.mask.sum() != b.mask.sum() or CMAP.to_class[a.category] == CMAP.to_class[b.category]
        overlapping += bool(pairs)
    assert overlapping >= 3, "layered outfits should give overlapping garment instances"


def test_parts_lie_in_garments_and_accessories_never_cover_them(drawn):
    part_ids = set()
    for d in drawn:
        wearables = [x.mask for x in d.instances if _kind(x.category) in ("garment", "jumpsuit")]
        union = np.logical_or.reduce(wearables) if wearables else np.zeros((H, W), bool)
        for x in d.instances:
            if _kind(x.category) == "part":
                part_ids.add(x.category)
                assert any(not (x.mask & ~g).any() for g in wearables), f"{d.image_id}: part {x.category} outside"
                assert not (d.semantic[x.mask] == 0).all() or d.kind == "jumpsuit"
            elif _kind(x.category) == "other":
                assert not (x.mask & union).any(), f"{d.image_id}: accessory {x.category} covers a garment"
                assert (d.semantic[x.mask] == 0).all()
    assert 31 in part_ids and len(part_ids) >= 3


def test_persons_csv(dataset, drawn):
    rows = _read_csv(dataset / "persons.csv")
    assert list(rows[0]) == ["ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated"]
    want = [(d.image_id, p.person, p.x_min, p.y_min, p.x_max, p.y_max, int(p.annotated)) for d in drawn
            for p in d.persons]
    assert [(r["ImageId"], *(int(r[k]) for k in list(r)[1:])) for r in rows] == want
    for d in drawn:
        annotated = [p for p in d.persons if p.annotated]
        assert len(annotated) == (0 if d.kind == "product" else 1)
        for p in d.persons:
            assert 0 <= p.x_min < p.x_max <= W and 0 <= p.y_min < p.y_max <= H
            assert p.annotated == (p.person == 0)
        if annotated:   # the annotated person's garments lie inside its box
            box = np.zeros((H, W), bool)
            box[annotated[0].y_min:annotated[0].y_max, annotated[0].x_min:annotated[0].x_max] = True
            assert all(not (x.mask & ~box).any() for x in d.instances)


def test_second_person_share():
    n, share = 40, 0.25
    seconds = 0
    for i in range(n):
        d = draw_image(7, i, height=64, width=48, second_person_share=share)
        others = [p for p in d.persons if not p.annotated]
        assert len(others) <= 1 and all(p.person == 1 for p in others)
        seconds += len(others)
    assert abs(seconds - share * n) <= 3
    none = [draw_image(7, i, height=64, width=48, second_person_share=0.0) for i in range(12)]
    assert all(all(p.annotated for p in d.persons) for d in none)


def test_jumpsuits_appear_and_are_excluded_from_the_semantic(dataset, drawn):
    jump = [d for d in drawn if d.kind == "jumpsuit"]
    assert 1 <= len(jump) <= 4  # 10 % of 24
    for d in jump:
        assert 11 in {x.category for x in d.instances}
    csv_jump = {r["ImageId"] for r in _read_csv(dataset / "train.csv") if r["ClassId"].split("_")[0] == "11"}
    assert csv_jump == {d.image_id for d in jump}
    without = [draw_image(SEED, i, height=64, width=48, jumpsuit_share=0.0) for i in range(N)]
    assert all(11 not in {x.category for x in d.instances} for d in without)


def test_categories_cover_the_merge():
    cats, classes, kinds = set(), set(), set()
    for i in range(60):
        d = draw_image(11, i, height=64, width=48)
        cats |= {x.category for x in d.instances}
        classes |= set(classes_present(d.semantic))
        kinds.add(d.kind)
    for cid, cls in CMAP.to_class.items():   # every category the merge keeps, except rarer ones, appears
        if cls > 0 and cid not in CMAP.part_ids:
            assert cid in cats, f"category {cid} ({CMAP.names[cid]}) never drawn"
    assert classes == set(range(1, NUM_CLASSES))
    assert {13, 14, 19, 31} <= cats          # accessories and parts that map to background
    assert kinds == {"person", "product", "jumpsuit"}


def test_attributes_are_real_ids(dataset):
    valid = {a["id"] for a in json.loads(default_label_descriptions().read_text())["attributes"]}
    n_with = 0
    for r in _read_csv(dataset / "train.csv"):
        parts = [int(v) for v in r["ClassId"].split("_")]
        assert parts[0] in CMAP.to_class and set(parts[1:]) <= valid
        assert parts[1:] == sorted(parts[1:])
        n_with += len(parts) > 1
    assert n_with > 0


def test_deterministic_and_independent_of_n_images(tmp_path):
    a = generate(tmp_path / "a", n_images=5, height=64, width=48, seed=1, progress=False)
    b = generate(tmp_path / "b", n_images=5, height=64, width=48, seed=1, progress=False)
    c = generate(tmp_path / "c", n_images=3, height=64, width=48, seed=1, progress=False)
    d = generate(tmp_path / "d", n_images=5, height=64, width=48, seed=2, progress=False)
    for name in ("train.csv", "persons.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "train.csv").read_bytes() != (d / "train.csv").read_bytes()
    files = sorted(os.listdir(a / "train"))
    assert files == sorted(os.listdir(b / "train")) == sorted(image_id(1, i) for i in range(5))
    for f in files:
        assert (a / "train" / f).read_bytes() == (b / "train" / f).read_bytes()
    for i in range(3):   # image i does not depend on how many images were asked for
        f = image_id(1, i)
        assert (a / "train" / f).read_bytes() == (c / "train" / f).read_bytes()
    a_rows = [r for r in _read_csv(a / "train.csv") if r["ImageId"] in {image_id(1, i) for i in range(3)}]
    assert a_rows == _read_csv(c / "train.csv")


def test_reuse_regenerate_and_refuse(tmp_path):
    root = tmp_path / "ds"
    generate(root, n_images=3, height=32, width=24, progress=False)
    marker = root / "GENERATOR.json"
    stamp = marker.stat().st_mtime_ns
    generate(root, n_images=3, height=32, width=24, progress=False)   # same parameters: reused
    assert marker.stat().st_mtime_ns == stamp
    generate(root, n_images=2, height=32, width=24, progress=False)   # other parameters: regenerated cleanly
    assert sorted(os.listdir(root / "train")) == sorted(image_id(0, i) for i in range(2))
    assert {r["ImageId"] for r in _read_csv(root / "train.csv")} <= {image_id(0, i) for i in range(2)}
    assert json.loads(marker.read_text())["params"]["n_images"] == 2
    # an interrupted run (marker says incomplete) is regenerated
    info = json.loads(marker.read_text())
    info["complete"] = False
    marker.write_text(json.dumps(info))
    (root / "train" / image_id(0, 0)).unlink()
    generate(root, n_images=2, height=32, width=24, progress=False)
    assert (root / "train" / image_id(0, 0)).is_file() and json.loads(marker.read_text())["complete"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "train.csv").write_text("ImageId\n")
    with pytest.raises(FileExistsError, match="not written by the synthetic generator"):
        generate(foreign, n_images=2, height=32, width=24, progress=False)
    assert (foreign / "train.csv").read_text() == "ImageId\n"


def test_bad_input(tmp_path):
    data = json.loads(default_label_descriptions().read_text())
    data["categories"][6]["name"] = "trousers"
    bad = tmp_path / "label_descriptions.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="label_descriptions.json.*6"):
        generate(tmp_path / "x", n_images=1, height=32, width=24, label_descriptions=bad, progress=False)
    with pytest.raises(FileNotFoundError):
        generate(tmp_path / "x", n_images=1, label_descriptions=tmp_path / "missing.json", progress=False)
    with pytest.raises(ValueError, match="second_person_share"):
        generate(tmp_path / "x", n_images=1, second_person_share=1.5, progress=False)
    with pytest.raises(ValueError, match="n_images"):
        generate(tmp_path / "x", n_images=0, progress=False)
    with pytest.raises(ValueError, match="at least 16"):
        draw_image(0, 0, height=8, width=8)


def test_reader_opens_the_output(dataset, drawn):
    imaterialist = pytest.importorskip("clothparse.datasets.imaterialist")
    ds = imaterialist.IMaterialist(dataset)
    kept = sorted((d for d in drawn if d.kind != "jumpsuit"), key=lambda d: d.image_id)
    assert ds.image_ids == [d.image_id for d in kept]
    assert ds.skipped.counts() == {"jumpsuit": N - len(kept)}
    for i, d in enumerate(kept):
        np.testing.assert_array_equal(ds.mask_of(i), d.semantic)
        assert ds.classes_of(i) == classes_present(d.semantic)
    sample = ds[0]
    assert sample.image.shape == (H, W, 3) and sample.image_id == kept[0].image_id


def test_interrupted_run_is_redone(tmp_path, monkeypatch):
    from clothparse.datasets.synthetic import dataset

    real_draw = dataset.draw_image

    def draw_then_crash(seed, index, **kw):
        if index == 2:
            raise KeyboardInterrupt
        return real_draw(seed, index, **kw)

    root, fresh = tmp_path / "ds", tmp_path / "fresh"
    monkeypatch.setattr(dataset, "draw_image", draw_then_crash)
    with pytest.raises(KeyboardInterrupt):
        generate(root, n_images=4, height=32, width=24, progress=False)
    info = json.loads((root / "GENERATOR.json").read_text())
    assert info["complete"] is False and "key" not in info      # claimed, but not finished
    assert len(os.listdir(root / "train")) == 2
    monkeypatch.setattr(dataset, "draw_image", real_draw)
    generate(root, n_images=4, height=32, width=24, progress=False)   # ours, unfinished: redone
    generate(fresh, n_images=4, height=32, width=24, progress=False)
    assert json.loads((root / "GENERATOR.json").read_text())["complete"] is True
    for name in ("train.csv", "persons.csv"):
        assert (root / name).read_bytes() == (fresh / name).read_bytes()
    assert sorted(os.listdir(root / "train")) == sorted(os.listdir(fresh / "train"))


def test_other_seed_or_version_regenerates(tmp_path, monkeypatch):
    from clothparse.datasets.synthetic import dataset

    root = tmp_path / "ds"
    generate(root, n_images=2, height=32, width=24, seed=0, progress=False)
    key0 = json.loads((root / "GENERATOR.json").read_text())["key"]
    generate(root, n_images=2, height=32, width=24, seed=5, progress=False)
    info = json.loads((root / "GENERATOR.json").read_text())
    assert info["key"] != key0 and info["params"]["seed"] == 5
    assert sorted(os.listdir(root / "train")) == sorted(image_id(5, i) for i in range(2))
    monkeypatch.setattr(dataset, "GENERATOR_VERSION", dataset.GENERATOR_VERSION + 1)
    generate(root, n_images=2, height=32, width=24, seed=5, progress=False)   # a new drawing: redone
    info2 = json.loads((root / "GENERATOR.json").read_text())
    assert info2["version"] == dataset.GENERATOR_VERSION and info2["key"] != info["key"]


def test_a_marker_without_its_key_is_not_taken_as_finished(tmp_path):
    """Only a marker holding the key of these parameters marks the folder done; a keyless one is regenerated."""
    root = tmp_path / "ds"
    generate(root, n_images=2, height=32, width=24, progress=False)
    marker = root / "GENERATOR.json"
    info = json.loads(marker.read_text())
    marker.write_text(json.dumps({k: v for k, v in info.items() if k not in ("key", "finished")}, indent=2))
    generate(root, n_images=2, height=32, width=24, progress=False)
    again = json.loads(marker.read_text())
    assert again["key"] == info["key"] and again["complete"] is True
