"""Using a trained model: parsing odd inputs at their original resolution, the prior, per-garment masks,
cut-outs and RLE, errors that name the file, the one overlay and device rule, the summary table and figures.
(``clothparse parse`` is tested in test_cli.py, the export in test_export.py.)"""
import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from test_images import write_inputs

from clothparse import categories, rle
from clothparse.categories import CLASSES, CLOTHING
from clothparse.models import build_model
from clothparse.parser.figures import figure_cutouts, figure_results
from clothparse.parser.garments import ClassMask
from clothparse.parser.outputs import summary_table
from clothparse.parser.parse import ImageLoadError, Parser, class_counts, parse, upsample_argmax
from clothparse.profiles import load_profile

from conftest import tiny_profile

TOP, PANTS, SHOE, DRESS = (CLASSES.index(c) for c in ("top", "pants", "shoe", "dress"))


@pytest.fixture(scope="module")
def run_dir(tiny_root):
    from clothparse.datasets.prepare import prepare
    from clothparse.training.train import train

    profile = load_profile({**tiny_profile(tiny_root, epochs_frozen=0, epochs_unfrozen=1), "models": ["extended_unet"]})
    return train(profile, "extended_unet", prepared=prepare(profile, progress=False), progress=False)


@pytest.fixture(scope="module")
def parser(run_dir):
    return Parser(run=run_dir, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def random_parser(tmp_path_factory):
    """An untrained run: its masks hold several garments with boxes smaller than the image."""
    from test_export import write_run

    return Parser(run=write_run(tmp_path_factory.mktemp("parse") / "extended_unet-random"), device="cpu")


# --- resizing back to the original resolution ------------------------------------------------------
def test_banded_upsampling_equals_full_interpolation():
    logits = torch.randn(9, 12, 8, generator=torch.Generator().manual_seed(0))
    full = F.interpolate(logits[None], (101, 77), mode="bilinear", align_corners=False)[0].argmax(0)
    banded = upsample_argmax(logits, (101, 77), max_elements=9 * 77 * 7)  # bands of 7 rows
    assert banded.dtype == torch.uint8 and banded.shape == (101, 77)
    assert (banded.long() == full).float().mean() > 0.999



def _reference_mask(logits, size):
    return F.interpolate(logits[None], size, mode="bilinear", align_corners=False)[0].argmax(0)


@pytest.mark.parametrize("size", [(825, 550), (1000, 667), (190, 130), (101, 77), (50, 40)])
def test_upsampling_only_near_boundaries_equals_full_interpolation(size):
    # network-like logits: smooth, with clear regions — most pixels take their source cell's class directly
    g = torch.Generator().manual_seed(sum(size))
    logits = 3 * F.interpolate(torch.randn(1, 9, 12, 8, generator=g), (192, 128), mode="bilinear",
                               align_corners=False)[0]
    from clothparse.parser.parse import _settled_cells

    assert (_settled_cells(logits.numpy()) != 255).mean() > 0.5  # the fast path runs, not the fallback
    mask = upsample_argmax(logits, size)
    assert mask.dtype == torch.uint8 and mask.shape == size
    assert torch.equal(mask.long(), _reference_mask(logits, size))
    # chunked the same: a small max_elements only splits the boundary pixels into more steps
    assert torch.equal(upsample_argmax(logits, size, max_elements=9 * 1000), mask)


def test_upsampling_keeps_ties_and_noise_as_the_reference():
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(9, 24, 16, generator=g)  # every cell open: the full interpolation runs
    assert torch.equal(upsample_argmax(noise, (101, 77)).long(), _reference_mask(noise, (101, 77)))
    tied = torch.zeros(9, 24, 16)
    tied[4:6, :12] = 1.0  # classes 4 and 5 tie: the first wins, as in argmax
    assert torch.equal(upsample_argmax(tied, (96, 64)).long(), _reference_mask(tied, (96, 64)))


def test_masks_at_original_resolution_for_odd_inputs(tmp_path, parser):
    files = write_inputs(tmp_path)
    paths = [tmp_path / n for n in files]
    results = parser(paths)
    assert [r.size for r in results] == list(files.values())
    for r in results:
        assert r.mask.shape == r.size and r.mask.dtype == np.uint8 and r.mask.max() < len(CLASSES)
        assert sum(r.fractions.values()) == pytest.approx(1.0)
        assert r.probability_source == "classbranch" and set(r.probabilities) == set(CLOTHING)
        assert all(0 <= p <= 1 for p in r.probabilities.values())
        for c, (x0, y0, x1, y1) in r.boxes.items():
            ys, xs = np.nonzero(r.mask == CLASSES.index(c))
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert set(r.colours) == set(r.classes) and set(r.boxes) == set(r.classes)
    # arrays and PIL images go the same way; a reduced working copy still gives the original-size mask
    rgb = np.asarray(Image.open(paths[0]).convert("RGB"))
    small = Parser(model=parser.model, input_size=parser.input_size, work_max_side=40)
    a, b = parser([rgb, Image.fromarray(rgb)]), small(rgb)
    assert np.array_equal(a[0].mask, results[0].mask) and np.array_equal(a[1].mask, results[0].mask)
    assert b[0].mask.shape == (77, 101) and max(b[0].image.shape[:2]) <= 40


def test_class_counts_equal_bincount_in_chunks():
    mask = np.random.default_rng(7).integers(0, len(CLASSES), (123, 77)).astype(np.uint8)
    expected = np.bincount(mask.ravel(), minlength=len(CLASSES))
    assert np.array_equal(class_counts(mask, chunk=1000), expected)
    assert np.array_equal(class_counts(mask), expected)


# --- one garment at a time -------------------------------------------------------------------------
def _garment_checks(res, full):
    """Every garment found: ``mask(name)``, its cut-out from ``full`` (the original pixels), its RLE."""
    assert res.classes, "the test needs a result with garments"
    garments = res.garments()
    assert list(garments) == list(res.classes)
    for name in res.classes:
        garment = res.mask(name)
        assert garment.dtype == bool and np.array_equal(garment, np.asarray(res.mask) == CLASSES.index(name))
        x0, y0, x1, y1 = res.boxes[name]
        cut = res.cutout(name)
        assert cut.shape == (y1 - y0, x1 - x0, 4) and cut.dtype == np.uint8
        inside = garment[y0:y1, x0:x1]
        assert np.array_equal(cut[..., 3], np.where(inside, 255, 0))                 # alpha = the garment
        assert np.array_equal(cut[inside, :3], full[y0:y1, x0:x1][inside])          # its original pixels
        assert not cut[~inside].any()                                               # the rest: transparent black
        assert garment[:y0].sum() + garment[y1:].sum() + garment[:, :x0].sum() + garment[:, x1:].sum() == 0
        assert garments[name]["box"] == [x0, y0, x1, y1] and garments[name]["pixels"] == garment.sum()
        assert np.array_equal(rle.decode(garments[name]["rle"], *res.size), garment)


def test_garment_masks_cutouts_and_rle(tmp_path, random_parser):
    rgb = np.random.default_rng(8).integers(0, 256, (77, 101, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    res = random_parser(tmp_path / "photo.png")[0]
    assert isinstance(res.mask, ClassMask) and res.original is None  # not reduced: image is the original
    _garment_checks(res, rgb)
    assert set(res.cutouts()) == set(res.classes)
    assert json.loads(json.dumps(res.to_dict()))["garments"] == res.garments()
    # the class-id array behaves as before; comparisons give plain arrays
    assert type(res.mask == 1) is np.ndarray and res.mask.shape == res.size and res.mask.dtype == np.uint8
    assert np.array_equal(res.mask("background"), np.asarray(res.mask) == 0)
    with pytest.raises(ValueError, match="unknown class 'gown'; the classes are background, top, overtop"):
        res.mask("gown")
    absent = next(c for c in CLOTHING if c not in res.classes)
    assert not res.mask(absent).any()
    with pytest.raises(ValueError, match=f"no {absent} found"):
        res.cutout(absent)


@pytest.mark.parametrize("kind", ["path", "array", "pil"])
def test_cutouts_of_a_reduced_image_are_at_the_original_resolution(tmp_path, random_parser, kind):
    rgb = np.random.default_rng(9).integers(0, 256, (77, 101, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    source = {"path": tmp_path / "photo.png", "array": rgb, "pil": Image.fromarray(rgb)}[kind]
    small = Parser(model=random_parser.model, input_size=random_parser.input_size, work_max_side=40, device="cpu")
    res = small(source)[0]
    assert max(res.image.shape[:2]) <= 40 and res.mask.shape == (77, 101)  # the colours' copy is reduced ...
    assert np.array_equal(res.full_image(), rgb)                             # ... the cut-outs' pixels are not
    _garment_checks(res, rgb)
    kept = dataclasses.replace(res, original=None)
    with pytest.raises(ValueError, match="keeps only a reduced copy"):
        kept.cutout(res.classes[0])


def test_only_limits_the_result_to_some_classes(random_parser):
    image = np.random.default_rng(10).integers(0, 256, (77, 101, 3), dtype=np.uint8)
    res = random_parser(image)[0]
    keep = res.classes[:2]
    only = res.only(",".join(reversed(keep)))
    assert only.classes == keep and set(only.boxes) == set(only.colours) == set(only.probabilities) == set(keep)
    assert set(np.unique(only.mask)) <= {0, *(CLASSES.index(c) for c in keep)}
    for c in keep:
        assert np.array_equal(only.mask(c), res.mask(c)) and only.fractions[c] == res.fractions[c]
    assert sum(only.fractions.values()) == pytest.approx(1.0) and set(only.fractions) == set(CLASSES)
    assert res.only(None) is res and isinstance(only.mask, ClassMask)
    with pytest.raises(ValueError, match="unknown clothing class 'gown'"):
        res.only("pants,gown")


def test_batch_size_is_checked():
    model = build_model("unet", input_size=(64, 64)).eval()
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"batch size must be a whole number of at least 1, got {bad}"):
            Parser(model=model, batch_size=bad)
    parser = Parser(model=model, batch_size=2)
    with pytest.raises(ValueError, match="at least 1"):
        parser.batch_size = 0
    images = [np.zeros((20, 30, 3), np.uint8)] * 3
    assert [r.size for r in parser(images)] == [(20, 30)] * 3  # two batches, every image once


# --- the prior ---------------------------------------------------------------------------------------
def test_hard_prior_removes_every_dress_pixel():
    torch.manual_seed(0)
    model = build_model("unet", input_size=(64, 64)).eval()
    with torch.no_grad():
        model.head[0].bias[DRESS] += 50.0  # a model that sees dresses everywhere
    image = np.random.default_rng(3).integers(0, 256, (101, 77, 3), dtype=np.uint8)
    plain = parse(image, model=model)[0]
    assert plain.classes == ("dress",) and (plain.mask == DRESS).all()
    assert plain.probability_source == "pixels" and plain.probabilities["dress"] > 0.99
    hard = parse(image, model=model, prior="-dress", hard=True)[0]
    assert not (hard.mask == DRESS).any() and "dress" not in hard.classes
    assert hard.probabilities["dress"] == 0.0 and hard.prior[DRESS - 1] == 0.0 and hard.hard
    with pytest.raises(ValueError, match="hard=True needs a prior"):
        parse(image, model=model, hard=True)
    with pytest.raises(ValueError, match="unknown clothing class"):
        parse(image, model=model, prior="-gown", hard=True)


def test_prior_through_the_classbranch(parser):
    image = np.random.default_rng(4).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    soft = parser(image, prior="skirt,-dress")[0]
    assert soft.probabilities["skirt"] > 0.999 and soft.probabilities["dress"] < 1e-3  # ±PRIOR_LOGIT injected
    assert soft.prior == [None, None, None, None, 1.0, 0.0, None, None]
    hard = parser(image, prior="skirt,-dress", hard=True)[0]
    assert not (hard.mask == DRESS).any()
    per_image = parser([image, image], prior=[[np.nan] * 8, [0.0] * 8], hard=True)
    assert per_image[1].classes == () and not per_image[1].mask.any()  # everything absent: all background


# --- errors -----------------------------------------------------------------------------------------
def test_api_errors_name_the_file_and_the_scheme(tmp_path, run_dir, parser):
    with pytest.raises(ImageLoadError, match="missing.png"):
        parser([tmp_path / "missing.png"])
    failures = list(parser.iter_parse([tmp_path / "missing.png", np.zeros((20, 30, 3), np.uint8)], errors="report"))
    assert [f.ok for f in failures] == [False, True] and "no such file" in failures[0].error
    with pytest.raises(ValueError, match="exactly one of run= .* or model="):
        Parser()
    other = tmp_path / "other_run"
    other.mkdir()
    params = json.loads((run_dir / "params.json").read_text())
    (other / "params.json").write_text(json.dumps({**params, "classes": ["background", "upper", "lower"]}))
    (other / "model.safetensors").symlink_to(run_dir / "model.safetensors")
    with pytest.raises(ValueError, match="trained on classes"):
        Parser(run=other)


def test_threads_read_ahead_and_finish_results_as_one_image_after_the_other_does(tmp_path, random_parser):
    """``workers``: photos are read a batch ahead and each result finished in a thread pool; the results are those
    of ``workers=0``, in input order, a broken file reported in its place (or raised, naming it)."""
    files = write_inputs(tmp_path / "in")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    inputs = [tmp_path / "in" / name for name in sorted(files)]
    inputs.insert(3, tmp_path / "in" / "broken.jpg")
    serial = Parser(run=random_parser.run, device="cpu", batch_size=3, workers=0)
    threaded = Parser(run=random_parser.run, device="cpu", batch_size=3, workers=3)
    assert threaded.workers == 3 and Parser(run=random_parser.run, device="cpu").workers >= 1
    one, many = (list(p.iter_parse(inputs, errors="report")) for p in (serial, threaded))
    assert [r.source for r in many] == [str(p) for p in inputs] == [r.source for r in one]
    assert [r.ok for r in many] == [name != "broken.jpg" for name in (p.name for p in inputs)]
    for a, b in zip(one, many):
        if a.ok:
            assert np.array_equal(np.asarray(a.mask), np.asarray(b.mask)) and a.boxes == b.boxes
            assert a.colours == b.colours and a.classes == b.classes
    with pytest.raises(ImageLoadError, match="broken.jpg"):
        threaded(inputs)
    with pytest.raises(ValueError, match="workers must be 0"):
        Parser(run=random_parser.run, device="cpu", workers=-1)


def test_a_caller_that_stops_early_does_not_wait_for_the_batches_it_will_not_see(tmp_path, random_parser):
    """The network runs one batch ahead of the results being yielded; a caller that stops (a break, Ctrl-C)
    leaves the later batches unstarted."""
    files = write_inputs(tmp_path / "in")
    inputs = [tmp_path / "in" / name for name in sorted(files)] * 3
    parser = Parser(run=random_parser.run, device="cpu", batch_size=1, workers=2)
    calls, network = [], parser.network.module
    parser.network.module = lambda x, **kw: calls.append(len(x)) or network(x, **kw)
    results = parser.iter_parse(inputs)
    first = next(results)
    results.close()
    assert first.source == str(inputs[0]) and first.ok
    assert 2 <= len(calls) <= 3 < len(inputs)


def test_mirror_averaging_averages_the_probabilities_of_a_photo_and_its_mirror(random_parser):
    """``tta``: the network's answer on the batch and on its mirror image (flipped back), averaged as
    probabilities — in the parser and in the evaluation alike; a photo that is its own mirror image gets a
    mirror-symmetric mask."""
    from types import SimpleNamespace

    from clothparse.evaluation.evaluate import evaluate_split
    from clothparse.evaluation.metrics import ConfusionMatrix
    from clothparse.parser.backends import MirrorAveraged, mirror_average

    tta = Parser(run=random_parser.run, device="cpu", batch_size=2, tta=True)
    assert isinstance(tta.network, MirrorAveraged) and tta.model is not None
    x = torch.randn(2, 3, *tta.input_size)
    seg, cls = tta.network(x)
    seg_plain, cls_plain = random_parser.network(x)
    seg_mirror, cls_mirror = random_parser.network(x.flip(-1))
    assert not torch.allclose(seg_plain, seg_mirror.flip(-1), atol=1e-3)  # the network is not symmetric
    assert torch.allclose(seg, mirror_average(seg_plain, seg_mirror), atol=1e-5)
    assert torch.allclose(cls, (cls_plain + cls_mirror) / 2, atol=1e-5)

    h, w = tta.input_size
    half = np.random.default_rng(0).integers(0, 255, (h, w // 2, 3), dtype=np.uint8)
    mask = np.asarray(tta(np.concatenate([half, half[:, ::-1]], axis=1))[0].mask)
    assert (mask != mask[:, ::-1]).mean() < 0.01

    # evaluate_split(tta=True) scores the parser's mirror-averaged argmax
    images = np.random.default_rng(1).integers(0, 255, (3, h, w, 3), dtype=np.uint8)
    masks = np.random.default_rng(2).integers(0, 9, (3, h, w), dtype=np.uint8)
    store = SimpleNamespace(images=images, masks=masks)
    got = evaluate_split(random_parser.model, store, np.arange(3), progress=False, tta=True, stats=tta.stats)
    want = ConfusionMatrix()
    want.update(tta.network(normalise(images, tta.stats))[0].argmax(1), torch.from_numpy(masks.astype(np.int64)))
    assert np.array_equal(got["plain"]["confusion"], want.matrix)
    plain = evaluate_split(random_parser.model, store, np.arange(3), progress=False, stats=tta.stats)
    assert not np.array_equal(plain["plain"]["confusion"], want.matrix)


def normalise(images: np.ndarray, stats) -> torch.Tensor:
    from clothparse.images import normalise_batch

    return normalise_batch(torch.from_numpy(images), stats)


# --- tables and figures -------------------------------------------------------------------------------
def test_summary_table_and_figure(parser):
    import matplotlib

    matplotlib.use("Agg")
    image = np.random.default_rng(5).integers(0, 256, (90, 60, 3), dtype=np.uint8)
    results = parser([image, image])
    table = summary_table(results)
    assert list(table["status"]) == ["ok", "ok"] and list(table["classes"]) == [" ".join(results[0].classes)] * 2
    fig = figure_results(results, compare=results)
    assert len(fig.axes) == 2 * 4


def test_cutout_figure(random_parser):
    import matplotlib

    matplotlib.use("Agg")
    image = np.random.default_rng(11).integers(0, 256, (77, 101, 3), dtype=np.uint8)
    results = random_parser([image, image[:60]])
    fig = figure_cutouts(results, max_garments=3)
    assert len(fig.axes) == 2 * (1 + min(3, max(len(r.classes) for r in results)))
    titles = [ax.get_title() for ax in fig.axes]
    first = results[0].classes[0]
    assert any(t.startswith(first) and (results[0].main_colours[first] or "") in t for t in titles)


def test_one_overlay_for_book_and_parser(parser):
    import clothparse.parser.parse

    image = np.random.default_rng(6).integers(0, 256, (90, 60, 3), dtype=np.uint8)
    res = parser(image)[0]
    assert clothparse.parser.parse.overlay is categories.overlay
    assert np.array_equal(res.overlay(), categories.overlay(res.image, res.mask, categories.OVERLAY_ALPHA))
    tinted = res.mask > 0
    assert np.array_equal(res.overlay()[~tinted], image[~tinted])  # background untouched
    assert not np.array_equal(res.overlay(alpha=0.9), res.overlay(alpha=0.1)) or not tinted.any()


@pytest.mark.parametrize("alpha", [0.5, 0.3, 0.77])
def test_overlay_table_equals_the_float_blend(alpha):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)
    mask = rng.integers(0, 9, (60, 50), dtype=np.uint8)
    blend = image.astype(np.float32)
    fg = mask > 0
    blend[fg] = (1 - alpha) * blend[fg] + alpha * categories.colorize(mask)[fg].astype(np.float32)
    assert np.array_equal(categories.overlay(image, mask, alpha), np.round(blend).astype(np.uint8))
    assert np.array_equal(categories.overlay(image.astype(np.float64), mask, alpha), np.round(blend).astype(np.uint8))
    with pytest.raises(ValueError, match="0..8"):
        categories.overlay(image, np.full((60, 50), 9, np.uint8))


def test_parser_device_follows_the_one_rule():
    model = build_model("unet", input_size=(64, 64)).eval()
    assert Parser(model=model).device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert Parser(model=model, device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Parser(model=model, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            Parser(model=model, device="cuda")
