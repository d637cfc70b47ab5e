"""The training benchmark runs end to end on a CPU (numbers only: no timing assertions)."""
import math
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_train  # noqa: E402,F401  (registers "train", "loader", "gpu_train")

import benchlib  # noqa: E402


def test_train_bench_returns_positive_rates(monkeypatch):
    # the quickest setting: tiny images, 1 timed batch per round, 2 rounds, one thread
    for key, value in {"device": "cpu", "size": (32, 32), "batch": (2,), "model": ("unet",), "iters": 1,
                       "rounds": 2, "threads": 1}.items():
        monkeypatch.setitem(benchlib.OPTIONS, key, value)
    fn, description = benchlib.BENCHES["train"]
    assert description
    rows = fn(True)
    rates = [r for r in rows if r.unit == "images/s"]
    assert len(rates) == 2
    assert all(math.isfinite(r.value) and r.value > 0 for r in rates)
    ratio = [r for r in rows if r.case == "clothparse / bare"]
    assert len(ratio) == 1 and ratio[0].value > 0


def _fastai_augment(x, y, draws):
    """clothparse's augmentation pipeline (fastai transforms as ``augmentations()`` configures them) with
    fixed draws instead of random ones."""
    from fastai.vision.all import Brightness, Contrast, Flip, Pipeline, Rotate, TensorImage, TensorMask
    from fastai.vision.augment import setup_aug_tfms

    from clothparse.train import augmentations

    kinds = [type(t).__name__ for t in augmentations()]
    # the transforms below stand for these; if augmentations() changes, the bare side must change with it
    # setup_aug_tfms composes Rotate into Flip (one affine grid) and Contrast into Brightness (one logit pass)
    assert kinds == ["Flip", "Brightness"], kinds
    tfms = setup_aug_tfms([Flip(p=1.0, draw=[1.0 if f else 0.0 for f in draws["flip"]], pad_mode="zeros"),
                           Rotate(max_deg=10, p=1.0, draw=draws["degrees"].tolist(), pad_mode="zeros"),
                           Brightness(p=1.0, draw=draws["brightness"].tolist()),
                           Contrast(p=1.0, draw=draws["contrast"].tolist())])
    pipe = Pipeline(tfms, split_idx=0)
    xi, yi = pipe((TensorImage(x.clone()), TensorMask(y.clone())))
    return xi.as_subclass(torch.Tensor), yi.as_subclass(torch.Tensor)


def test_bare_augmentation_equals_fastai_on_the_same_draws():
    """The bare side of ``train_epoch`` does the work clothparse's augmentation does: the same image and mask
    for the same draws (flip, rotation, brightness, contrast), so the epoch ratio compares like with like."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 24, 40, generator=g)
    y = torch.randint(0, 9, (4, 24, 40), generator=g)
    draws = {"flip": torch.tensor([True, False, True, False]), "degrees": torch.tensor([7.0, -9.5, 0.0, 3.0]),
             "brightness": torch.tensor([0.42, 0.5, 0.58, 0.47]), "contrast": torch.tensor([1.2, 0.85, 1.0, 1.1])}
    ours_x, ours_y = bench_train.bare_augment(x, y, draws)
    ref_x, ref_y = _fastai_augment(x, y, draws)
    assert ours_x.shape == ref_x.shape and ours_y.shape == ref_y.shape
    assert torch.allclose(ours_x, ref_x, atol=1e-5), (ours_x - ref_x).abs().max()
    assert (ours_y != ref_y).float().mean() < 1e-3  # nearest sampling: a tie at a pixel edge may round apart
    assert not torch.equal(ours_y, y)  # the draws did something


def test_augment_draws_follow_the_configured_probabilities():
    torch.manual_seed(0)
    d = bench_train.augment_draws(20_000, "cpu")
    assert abs(d["flip"].float().mean() - 0.5) < 0.02
    assert abs((d["degrees"] != 0).float().mean() - 0.75) < 0.02 and d["degrees"].abs().max() <= 10
    assert abs((d["brightness"] != 0.5).float().mean() - 0.75) < 0.02
    assert d["brightness"].min() >= 0.4 and d["brightness"].max() <= 0.6
    assert d["contrast"].min() >= 0.8 - 1e-6 and d["contrast"].max() <= 1.25 + 1e-6


def test_train_epoch_bench_returns_positive_rates(monkeypatch):
    for key, value in {"device": "cpu", "size": (32, 32), "batch": (2,), "model": ("unet",), "iters": 1,
                       "rounds": 2, "threads": 1}.items():
        monkeypatch.setitem(benchlib.OPTIONS, key, value)
    rows = benchlib.BENCHES["train_epoch"][0](True)
    rates = [r.value for r in rows if r.unit == "images/s"]
    assert len(rates) == 2 and all(math.isfinite(v) and v > 0 for v in rates)
    assert [r.unit for r in rows] == ["images/s", "images/s", "×"]
