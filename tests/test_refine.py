"""The multi-person cleaning step (clothparse.refine) on tiny datasets whose people are known."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clothparse import rle
from clothparse.refine import (
    Detections,
    MaskRCNNDetector,
    PersonsCsvDetector,
    RefineReport,
    crop_box,
    figure_examples,
    refine,
    stage_table,
)

LABELS = Path(__file__).resolve().parents[2] / "shared/data/imaterialist2019/label_descriptions.json"
if not LABELS.is_file():
    LABELS = Path("/work/shared/data/imaterialist2019/label_descriptions.json")

H, W = 48, 80
# image id → (annotated person's columns or None, other people's columns)
# GT width 20 px → margins 30/10/0 % add 6/2/0 px; a person counts when ≥ 30 % of its box is visible.
CASES = {
    "a_single.jpg": ((10, 30), []),            # one person: kept as is
    "b_product.jpg": (None, []),               # no person (a bag alone): kept as is
    "c_far.jpg": ((10, 30), [(50, 70)]),       # gone from the x=30 crop [4, 36)
    "d_x10.jpg": ((30, 50), [(52, 62)]),       # 40 % visible in [24, 56), gone from [28, 52)
    "e_x0.jpg": ((30, 50), [(50, 55)]),        # 40 % visible in [28, 52), gone from [30, 50)
    "f_overlap.jpg": ((30, 50), [(40, 60)]),   # half inside even the x=0 crop: review
    "g_overlap.jpg": ((10, 30), [(0, 20)]),    # review
}
EXPECTED = {"a_single.jpg": ("single_person", None), "b_product.jpg": ("no_person", None),
            "c_far.jpg": ("cropped", 30), "d_x10.jpg": ("cropped", 10), "e_x0.jpg": ("cropped", 0),
            "f_overlap.jpg": ("undecided", 0), "g_overlap.jpg": ("undecided", 0),
            "h_broken.jpg": ("load_failed", None)}


def _make_dataset(root: Path) -> Path:
    """Hand-built iMaterialist layout + persons.csv; garments: top (id 1), pants (6), bag (24)."""
    (root / "train").mkdir(parents=True)
    shutil.copy(LABELS, root / "label_descriptions.json")
    rows, persons = [], []
    for image_id, (ann, others) in CASES.items():
        img = np.full((H, W, 3), 220, np.uint8)
        for k, (x0, x1) in enumerate(others):
            img[2:46, x0:x1] = (40, 60, 160)
            persons.append((image_id, k + 1, x0, 2, x1, 46, 0))
        if ann is None:
            bag = np.zeros((H, W), bool)
            bag[20:30, 30:50] = True
            rows.append((image_id, rle.encode(bag), H, W, "24"))
        else:
            x0, x1 = ann
            img[2:46, x0:x1] = (170, 40, 40)
            persons.append((image_id, 0, x0, 2, x1, 46, 1))
            top = np.zeros((H, W), bool)
            top[5:25, x0:x1] = True
            pants = np.zeros((H, W), bool)
            pants[25:45, x0 + 3:x1 - 3] = True
            rows += [(image_id, rle.encode(top), H, W, "1_115"), (image_id, rle.encode(pants), H, W, "6")]
        Image.fromarray(img).save(root / "train" / image_id, quality=95)
    (root / "train" / "h_broken.jpg").write_bytes(b"this is not a JPEG")
    rows.append(("h_broken.jpg", "1 10", H, W, "1"))
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width", "ClassId"]).to_csv(
        root / "train.csv", index=False)
    pd.DataFrame(persons, columns=["ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated"]).to_csv(
        root / "persons.csv", index=False)
    return root


def _gt(root: Path, image_id: str) -> list[np.ndarray]:
    df = pd.read_csv(root / "train.csv")
    return [rle.decode(r.EncodedPixels, r.Height, r.Width) for r in df[df.ImageId == image_id].itertuples()]


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return _make_dataset(tmp_path_factory.mktemp("refine") / "src")


@pytest.fixture(scope="module")
def first_run(src, tmp_path_factory) -> RefineReport:
    return refine(src, tmp_path_factory.mktemp("refine") / "out", PersonsCsvDetector(src), progress=False)


def test_crop_box_margins_round_up_and_clip():
    assert crop_box(30, 50, 80, 48, 30) == (24, 0, 56, 48)
    assert crop_box(30, 50, 80, 48, 10) == (28, 0, 52, 48)
    assert crop_box(30, 50, 80, 48, 0) == (30, 0, 50, 48)
    assert crop_box(30, 37, 80, 48, 10) == (29, 0, 38, 48)     # 0.7 px → 1 px
    assert crop_box(2, 78, 80, 48, 30) == (0, 0, 80, 48)       # clipped to the image


def test_persons_csv_detector_counts_visible_people_in_crop_coordinates(src):
    det = PersonsCsvDetector(src)
    img = np.zeros((H, W, 3), np.uint8)
    full, = det.detect([img], ["d_x10.jpg"])
    assert len(full) == 2
    crop = crop_box(30, 50, W, H, 30)
    inside, = det.detect([img[:, crop[0]:crop[2]]], ["d_x10.jpg"], [crop])
    np.testing.assert_allclose(inside.boxes, [[28, 2, 32, 46], [6, 2, 26, 46]])   # translated, clipped
    narrow = crop_box(30, 50, W, H, 10)
    assert len(det.detect([img[:, narrow[0]:narrow[2]]], ["d_x10.jpg"], [narrow])[0]) == 1
    assert len(det.detect([img], ["no_such.jpg"])[0]) == 0
    with pytest.raises(ValueError, match="does not match"):
        det.detect([img], ["d_x10.jpg"], [narrow])


def test_outcomes_and_stage_counts(first_run):
    rec = first_run.records.set_index("image_id")
    got = {i: (r.status, None if pd.isna(r.margin) else int(r.margin)) for i, r in rec.iterrows()}
    assert got == EXPECTED
    c = first_run.counts
    assert (c["total"], c["no_person"], c["single_person"], c["multi_person"]) == (8, 1, 1, 5)
    assert (c["kept_x30"], c["kept_x10"], c["kept_x0"]) == (1, 1, 1)
    assert (c["review"], c["review_kept"], c["review_dropped"], c["undecided_dropped"]) == (2, 0, 0, 2)
    assert (c["load_failed"], c["final_kept"]) == (1, 5)
    assert first_run.failures.counts() == {"unreadable image": 1}
    assert not first_run.reused
    table = stage_table(first_run)
    assert table.loc["total images", "paper"] == 45622
    assert table.loc["more than 1 person detected", "paper"] == 12188
    assert table.loc["sent to manual review", "paper"] == 1030
    assert table.loc["final kept", ["this run", "paper"]].tolist() == [5, 43470]
    assert table.loc["kept after cropping, x = 10 %", "this run"] == 1


def test_output_dataset(first_run, src):
    out = Path(first_run.out_root)
    rec = first_run.records.set_index("image_id")
    out_csv = pd.read_csv(out / "train.csv")
    assert sorted(out_csv.ImageId.unique()) == ["a_single.jpg", "b_product.jpg", "c_far.jpg", "d_x10.jpg", "e_x0.jpg"]
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(out_csv.ImageId.unique())
    assert (out / "label_descriptions.json").read_bytes() == LABELS.read_bytes()
    src_csv = pd.read_csv(src / "train.csv")
    for image_id in ("a_single.jpg", "b_product.jpg"):            # untouched: linked, rows verbatim
        assert os.path.samefile(out / "train" / image_id, src / "train" / image_id) or \
            (out / "train" / image_id).read_bytes() == (src / "train" / image_id).read_bytes()
        pd.testing.assert_frame_equal(out_csv[out_csv.ImageId == image_id].reset_index(drop=True),
                                      src_csv[src_csv.ImageId == image_id].reset_index(drop=True))
    for image_id in ("c_far.jpg", "d_x10.jpg", "e_x0.jpg"):
        x0, x1 = int(rec.loc[image_id, "x_min"]), int(rec.loc[image_id, "x_max"])
        ann = CASES[image_id][0]
        assert (x0, x1) == crop_box(*ann, W, H, rec.loc[image_id, "margin"])[::2]
        with Image.open(out / "train" / image_id) as im:
            assert (im.height, im.width) == (H, x1 - x0)           # full height
        src_masks, out_masks = _gt(src, image_id), _gt(out, image_id)
        assert len(out_masks) == len(src_masks)
        for s, o in zip(src_masks, out_masks):
            np.testing.assert_array_equal(o, s[:, x0:x1])         # RLE re-encoded for the crop
            assert o.sum() == s.sum()                              # every GT pixel kept
        rows = out_csv[out_csv.ImageId == image_id]
        assert set(rows.Height) == {H} and set(rows.Width) == {x1 - x0}
        assert rows.ClassId.tolist() == src_csv[src_csv.ImageId == image_id].ClassId.tolist()
    persons = pd.read_csv(out / "persons.csv")
    e = persons[persons.ImageId == "e_x0.jpg"]                     # crop [30, 50): only the annotated one
    assert e[["x_min", "x_max", "annotated"]].values.tolist() == [[0, 20, 1]]
    d = persons[persons.ImageId == "d_x10.jpg"]                    # crop [28, 52)
    assert d[["x_min", "x_max"]].values.tolist() == [[2, 22]]
    # The refined dataset is reused unchanged by the reader.
    from clothparse.datasets.imaterialist import IMaterialist

    ds = IMaterialist(out)
    assert len(ds) == 5
    sample = ds[ds.image_ids.index("e_x0.jpg")]
    assert sample.image.shape == (H, 20, 3) and sample.classes == (1, 3)
    # Running refine on its own output changes nothing more: every image now shows ≤ 1 person.
    again = refine(out, out.parent / "again", PersonsCsvDetector(out), progress=False)
    assert again.counts["multi_person"] == 0 and again.counts["final_kept"] == 5


def test_review_list_and_contact_sheets(first_run):
    out = Path(first_run.out_root)
    review = pd.read_csv(out / "review.csv", keep_default_na=False)
    assert review.ImageId.tolist() == ["f_overlap.jpg", "g_overlap.jpg"]
    assert review[["x_min", "y_min", "x_max", "y_max"]].values.tolist() == [[30, 0, 50, H], [10, 0, 30, H]]
    assert review.n_persons.tolist() == [2, 2] and review.n_persons_crop.tolist() == [2, 2]
    for sheet in review.sheet:
        with Image.open(out / sheet) as im:
            assert im.format == "PNG" and im.width > 3 * W * 384 // H // 2


def test_decisions_are_honoured_and_reruns_do_nothing(src, tmp_path):
    out = tmp_path / "out"
    det = PersonsCsvDetector(src)
    first = refine(src, out, det, progress=False)
    assert first.detection_cache["misses"] > 0
    decisions = tmp_path / "decisions.csv"
    pd.DataFrame({"ImageId": ["f_overlap.jpg", "g_overlap.jpg", "a_single.jpg"],
                  "decision": ["Keep", "drop", "keep"]}).to_csv(decisions, index=False)
    second = refine(src, out, det, decisions=decisions, progress=False)
    c = second.counts
    assert (c["review"], c["review_kept"], c["review_dropped"], c["undecided_dropped"]) == (2, 1, 1, 0)
    assert c["final_kept"] == first.counts["final_kept"] + 1
    assert c["decisions_unused"] == 1                               # a_single.jpg was never in review
    assert second.detection_cache["misses"] == 0                    # detections came from the cache
    with Image.open(out / "train" / "f_overlap.jpg") as im:        # kept as its x=0 crop
        assert im.size == (20, H)
    assert not (out / "train" / "g_overlap.jpg").exists()
    review = pd.read_csv(out / "review.csv", keep_default_na=False)
    assert review.decision.tolist() == ["keep", "drop"]

    stamps = {p: p.stat().st_mtime_ns for p in [out / "train.csv", out / "report.json", out / "train" / "c_far.jpg"]}
    third = refine(src, out, PersonsCsvDetector(src), decisions=decisions, progress=False)
    assert third.reused and third.counts == second.counts
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    decisions.write_text("ImageId,decision\nf_overlap.jpg,maybe\n")
    with pytest.raises(ValueError, match=r"decisions\.csv, row 2 \(f_overlap\.jpg\).*'maybe'"):
        refine(src, out, det, decisions=decisions, progress=False)
    with pytest.raises(ValueError, match="copy it elsewhere"):
        refine(src, out, det, decisions=out / "review.csv", progress=False)


def test_refuses_to_overwrite_foreign_or_source_folders(src, tmp_path):
    det = PersonsCsvDetector(src)
    with pytest.raises(ValueError, match="must not be src_root"):
        refine(src, src, det, progress=False)
    foreign = tmp_path / "other"
    (foreign / "train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="did not write"):
        refine(src, foreign, det, progress=False)


def test_wrong_size_in_train_csv_is_fitted_like_the_reader(tmp_path):
    """Two real Kaggle images state a wrong Height/Width: masks are fitted to the image, then cropped."""
    from clothparse.datasets.imaterialist import resize_nearest

    src = _make_dataset(tmp_path / "src")
    df = pd.read_csv(src / "train.csv")
    rows = df.ImageId == "c_far.jpg"
    small = [rle.decode(r.EncodedPixels, H, W)[::2, ::2] for r in df[rows].itertuples()]
    df.loc[rows, "EncodedPixels"] = [rle.encode(m) for m in small]
    df.loc[rows, ["Height", "Width"]] = [H // 2, W // 2]
    df.to_csv(src / "train.csv", index=False)
    report = refine(src, tmp_path / "out", PersonsCsvDetector(src), progress=False)
    assert report.counts["size_fixed"] == 1 and report.size_fixed[0].startswith("c_far.jpg: csv 24×40")
    r = report.records.set_index("image_id").loc["c_far.jpg"]
    assert r.status == "cropped"
    x0, x1 = int(r.x_min), int(r.x_max)
    out = [m for m in _gt(tmp_path / "out", "c_far.jpg")]
    for s, o in zip(small, out):
        np.testing.assert_array_equal(o, resize_nearest(s, H, W)[:, x0:x1])


def test_figure_examples(first_run):
    import matplotlib

    matplotlib.use("Agg")
    fig = figure_examples(first_run, n=2)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title().startswith("input: 2 persons")
    crop_shape = fig.axes[2].images[0].get_array().shape
    assert crop_shape[0] == H and crop_shape[1] < W
    fig2 = figure_examples(first_run.out_root, n=5)                # from the folder; only 3 crops exist
    assert len(fig2.axes) == 9


def test_synthetic_dataset_ground_truth(tmp_path):
    synthetic = pytest.importorskip("clothparse.datasets.synthetic")
    root = tmp_path / "syn"
    synthetic.generate(root, n_images=30, height=96, width=64, seed=0, second_person_share=0.4)
    persons = pd.read_csv(root / "persons.csv")
    drawn = persons.groupby("ImageId").size()
    report = refine(root, tmp_path / "out", PersonsCsvDetector(root), progress=False)
    rec = report.records.set_index("image_id")
    out_persons = pd.read_csv(tmp_path / "out" / "persons.csv")
    multi = set(rec.index[rec.n_persons > 1])
    assert multi == set(drawn.index[drawn > 1])                     # exactly the images with a second person
    assert 0 < len(multi) < 30
    # Expected outcome of every multi-person image, from the generator's boxes and the GT mask.
    expected = {k: 0 for k in ("kept_x30", "kept_x10", "kept_x0", "review")}
    for image_id in sorted(multi):
        gt = np.logical_or.reduce(_gt(root, image_id))
        cols = np.flatnonzero(gt.any(axis=0))
        boxes = persons[persons.ImageId == image_id][["x_min", "x_max"]].to_numpy()
        outcome = "review"
        for m in (30, 10, 0):
            x0, _, x1, _ = crop_box(cols[0], cols[-1] + 1, 64, 96, m)
            visible = np.clip(np.minimum(boxes[:, 1], x1) - np.maximum(boxes[:, 0], x0), 0, None)
            if ((visible / (boxes[:, 1] - boxes[:, 0])) >= 0.3).sum() == 1:
                outcome = f"kept_x{m}"
                break
        expected[outcome] += 1
        if outcome != "review":
            assert rec.loc[image_id, "margin"] == int(outcome[6:])
            out_masks, src_masks = _gt(tmp_path / "out", image_id), _gt(root, image_id)
            assert sum(m.sum() for m in out_masks) == sum(m.sum() for m in src_masks)
            with Image.open(tmp_path / "out" / "train" / image_id) as im:
                assert im.height == 96
            kept = out_persons[out_persons.ImageId == image_id]
            assert kept.annotated.tolist().count(1) == 1           # the annotated person is still in the crop
    assert {k: report.counts[k] for k in expected} == expected
    assert report.counts["final_kept"] == 30 - expected["review"] - report.counts["load_failed"]


def test_maskrcnn_random_weights_runs_without_download(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    det = MaskRCNNDetector(weights=None, device="cpu", batch_size=2, score_threshold=0.0, min_size=64, max_size=96)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 80, 3), dtype=np.uint8), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)]
    out = det.detect(images)
    assert len(out) == 2 and all(isinstance(d, Detections) for d in out)
    for d, img in zip(out, images):
        assert d.boxes.shape == (len(d), 4)
        if len(d):
            assert d.boxes.min() >= 0 and (d.boxes[:, 2] <= img.shape[1] + 1e-3).all()
    assert det.identity()["weights"] == {"random": 0}
    assert not (tmp_path / "torch").exists()                        # nothing was fetched

    with pytest.raises(RuntimeError, match=r"maskrcnn_resnet50_fpn_coco-bf2d0c1e\.pth.*torch"):
        MaskRCNNDetector(weights="DEFAULT", device="cpu", download=False)

    from torchvision.models.detection import maskrcnn_resnet50_fpn

    path = tmp_path / "weights.pth"
    torch.save(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91).state_dict(), path)
    from_file = MaskRCNNDetector(weights=path, device="cpu", min_size=64, max_size=96)
    assert from_file.identity()["weights"]["file"] == "weights.pth"
    assert len(from_file.detect(images[:1])) == 1


def _marker(out: Path) -> dict:
    import json

    return json.loads((out / "REFINE.json").read_text())


def test_marker_with_another_key_or_incomplete_is_redone(src, tmp_path):
    """REFINE.json is a KeyedFolder marker: only a completed run with this very key is reused."""
    import json

    out = tmp_path / "out"
    first = refine(src, out, PersonsCsvDetector(src), progress=False)
    marker = _marker(out)
    assert marker["key"] == first.key and marker["complete"] is True and marker["counts"] == first.counts
    assert refine(src, out, PersonsCsvDetector(src), progress=False).reused

    for stale in ({**marker, "key": "another"},                   # another source, detector, margins, ...
                  {"key": first.key, "complete": False},          # written by the earlier refine.py during a run
                  {"in_progress": first.key}):                    # an interrupted run of this one
        (out / "REFINE.json").write_text(json.dumps(stale))
        again = refine(src, out, PersonsCsvDetector(src), progress=False)
        assert not again.reused and again.counts == first.counts and again.key == first.key
        assert again.detection_cache["misses"] == 0                 # the detector still came from the cache
        assert _marker(out)["key"] == first.key
    (out / "REFINE.json").write_text("{torn")
    assert not refine(src, out, PersonsCsvDetector(src), progress=False).reused
    # Another margin is another key, so the run is redone too.
    other = refine(src, out, PersonsCsvDetector(src), margins=(30, 0), progress=False)
    assert not other.reused and other.key != first.key and "kept_x10" not in other.counts


def test_interrupted_run_leaves_no_key_and_is_redone(src, tmp_path):
    class Failing(PersonsCsvDetector):
        def detect(self, images, image_ids=None, crops=None):
            raise RuntimeError("detector crashed")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="detector crashed"):
        refine(src, out, Failing(src), progress=False)
    assert "key" not in _marker(out)                                 # never read as complete ...
    assert (out / "train").is_dir() and not (out / "report.json").exists()
    report = refine(src, out, PersonsCsvDetector(src), progress=False)   # ... nor as a foreign folder
    assert not report.reused and report.counts["final_kept"] == 5


def test_maskrcnn_cuda_without_cuda_is_a_clear_error(monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match=f"device '{device}' requested but CUDA is not available"):
            MaskRCNNDetector(weights=None, device=device)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        MaskRCNNDetector(weights=None, device="tpu")
    assert MaskRCNNDetector(weights=None, min_size=64, max_size=96).device.type == "cpu"   # auto


def test_contact_sheets_use_the_shared_overlay():
    from clothparse import categories
    from clothparse.refine import figures

    assert figures.overlay is categories.overlay


def test_a_replaced_photo_is_refined_again(tmp_path):
    """The key covers every image's size and mtime: a repaired photo must not reuse the old output."""
    import os

    src = _make_dataset(tmp_path / "src")
    out = tmp_path / "out"
    first = refine(src, out, PersonsCsvDetector(src), progress=False)
    assert refine(src, out, PersonsCsvDetector(src), progress=False).reused
    photo = next(p for p in sorted((src / "train").iterdir()) if p.is_file())
    stat = photo.stat()
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = refine(src, out, PersonsCsvDetector(src), progress=False)
    assert not again.reused and again.key != first.key


def _random_masks(rng: np.random.Generator, h: int, w: int) -> list[np.ndarray]:
    """Masks with runs that cross column boundaries, whole columns, single pixels and nothing at all."""
    masks = [rng.random((h, w)) < p for p in (0.05, 0.5, 0.95)]
    full_columns = np.zeros((h, w), bool)
    full_columns[:, 3:7] = True                     # one run over several whole columns
    corner = np.zeros((h, w), bool)
    corner[-1, 0] = corner[0, -1] = True
    return masks + [full_columns, corner, np.zeros((h, w), bool)]


def test_crops_and_spans_from_runs_equal_those_of_decoded_masks():
    from clothparse.refine.crop import crop_runs, runs_span

    rng = np.random.default_rng(0)
    h, w = 7, 11
    for mask in _random_masks(rng, h, w):
        starts, lengths = rle.parse_runs(rle.encode(mask), h * w)
        cols = np.flatnonzero(mask.any(axis=0))
        assert runs_span([(starts, lengths)], h, w) == ((cols[0], cols[-1] + 1) if cols.size else (0, w))
        for x0 in range(w):
            for x1 in range(x0 + 1, w + 1):
                assert crop_runs(starts, lengths, h, x0, x1) == rle.encode(mask[:, x0:x1]), (x0, x1)


def test_crop_of_touching_runs_is_merged_like_encode():
    """A train.csv may split one run in two touching ones; the crop's RLE is the canonical one."""
    from clothparse.refine.crop import crop_runs

    h = 4
    starts, lengths = rle.parse_runs("3 2 5 4 20 1", 6 * h)      # 0-based [2, 4) + [4, 8) touch
    mask = rle.decode("3 2 5 4 20 1", h, 6)
    assert crop_runs(starts, lengths, h, 0, 6) == rle.encode(mask) == "3 6 20 1"
    assert crop_runs(starts, lengths, h, 1, 5) == rle.encode(mask[:, 1:5])


def test_span_of_several_instances_is_that_of_their_union():
    from clothparse.refine.crop import runs_span

    h, w = 5, 9
    a, b = np.zeros((h, w), bool), np.zeros((h, w), bool)
    a[2, 4:6] = True
    b[0, 1] = b[4, 2] = True
    runs = [rle.parse_runs(rle.encode(m), h * w) for m in (a, b)]
    assert runs_span(runs, h, w) == (1, 6)
