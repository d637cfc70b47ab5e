"""clothparse's augmentation is fastai's ``aug_transforms`` of the paper's settings, on plain tensors: the same
image and mask for the same draws, the same draw distributions, training batches only."""
import torch
from fastai.vision.all import Brightness, Contrast, Flip, Pipeline, Rotate, TensorImage, TensorMask
from fastai.vision.augment import setup_aug_tfms

from clothparse.training.augment import FlipRotateLighting, augment_batch, augment_draws, fastai_transforms

DRAWS = {"flip": torch.tensor([True, False, True, False]), "degrees": torch.tensor([7.0, -9.5, 0.0, 3.0]),
         "brightness": torch.tensor([0.42, 0.5, 0.58, 0.47]), "contrast": torch.tensor([1.2, 0.85, 1.0, 1.1])}


def _batch(seed: int = 0, h: int = 24, w: int = 40):
    g = torch.Generator().manual_seed(seed)  # not square: the aspect-ratio correction of the rotation matters
    return torch.rand(4, 3, h, w, generator=g), torch.randint(0, 9, (4, h, w), generator=g)


def _fastai(x, y, draws):
    """fastai's own transforms, configured as :func:`fastai_transforms`, with fixed draws."""
    kinds = [type(t).__name__ for t in fastai_transforms()]
    # setup_aug_tfms composes Rotate into Flip (one affine grid) and Contrast into Brightness (one logit pass)
    assert kinds == ["Flip", "Brightness"], kinds
    tfms = setup_aug_tfms([Flip(p=1.0, draw=[float(f) for f in draws["flip"]], pad_mode="zeros"),
                           Rotate(max_deg=10, p=1.0, draw=draws["degrees"].tolist(), pad_mode="zeros"),
                           Brightness(p=1.0, draw=draws["brightness"].tolist()),
                           Contrast(p=1.0, draw=draws["contrast"].tolist())])
    xi, yi = Pipeline(tfms, split_idx=0)((TensorImage(x.clone()), TensorMask(y.clone())))
    return xi.as_subclass(torch.Tensor), yi.as_subclass(torch.Tensor)


def test_augment_batch_equals_fastai_on_the_same_draws():
    x, y = _batch()
    ours_x, ours_y = augment_batch(x, y, DRAWS)
    ref_x, ref_y = _fastai(x, y, DRAWS)
    assert ours_x.shape == ref_x.shape and ours_y.shape == ref_y.shape and ours_y.dtype == y.dtype
    assert torch.allclose(ours_x, ref_x, atol=1e-5), (ours_x - ref_x).abs().max()
    assert (ours_y != ref_y).float().mean() < 1e-3  # nearest sampling: a tie at a pixel edge may round apart
    assert not torch.equal(ours_y, y) and not torch.allclose(ours_x, x)  # the draws did something


def test_the_fastai_transform_applies_one_set_of_draws_to_image_and_mask():
    """In a fastai pipeline, image and mask move together: the transform's own draws, replayed through
    ``augment_batch``, give both outputs."""
    x, y = _batch(1)
    tfm = FlipRotateLighting()
    torch.manual_seed(3)
    xi, yi = Pipeline([tfm], split_idx=0)((TensorImage(x), TensorMask(y)))
    assert isinstance(xi, TensorImage) and isinstance(yi, TensorMask)
    ref_x, ref_y = augment_batch(x, y, tfm.draws)
    assert torch.allclose(xi.as_subclass(torch.Tensor), ref_x, atol=1e-6)
    assert torch.equal(yi.as_subclass(torch.Tensor), ref_y)


def test_validation_batches_are_not_augmented():
    x, y = _batch(2)
    xi, yi = Pipeline([FlipRotateLighting()], split_idx=1)((TensorImage(x), TensorMask(y)))
    assert torch.equal(xi.as_subclass(torch.Tensor), x) and torch.equal(yi.as_subclass(torch.Tensor), y)


def test_draws_follow_the_paper_probabilities_and_ranges():
    torch.manual_seed(0)
    d = augment_draws(20_000)
    assert abs(d["flip"].float().mean() - 0.5) < 0.02
    assert abs((d["degrees"] != 0).float().mean() - 0.75) < 0.02 and d["degrees"].abs().max() <= 10
    assert abs((d["brightness"] != 0.5).float().mean() - 0.75) < 0.02
    assert d["brightness"].min() >= 0.4 and d["brightness"].max() <= 0.6
    assert d["contrast"].min() >= 0.8 - 1e-6 and d["contrast"].max() <= 1.25 + 1e-6


class _Rows:
    """What ``make_dataloaders`` reads of a :class:`~clothparse.datasets.prepare.Prepared`: a store and split rows."""

    def __init__(self, store):
        self.store = store

    def indices(self, split: str):
        return list(range(8)) if split == "train" else list(range(8, len(self.store)))


def test_training_batches_of_the_real_dataloaders_are_augmented_and_validation_ones_are_not(tmp_path):
    """Through ``make_dataloaders`` over a real store: fastai runs a random transform only where the loader's
    dataset says ``split_idx == 0``; a dataset without it would silently train unaugmented."""
    from fastai.torch_core import set_seed

    from clothparse.datasets.imaterialist import IMaterialist
    from clothparse.datasets.store import build_store
    from clothparse.datasets.synthetic import generate
    from clothparse.training.train import make_dataloaders

    root = generate(tmp_path / "synthetic", n_images=12, height=48, width=32, seed=5, progress=False)
    store = build_store(IMaterialist(root), tmp_path / "store", size=(48, 32), workers=0, progress=False)
    batches = {}
    for augment in (True, False):
        set_seed(0)
        dls = make_dataloaders(_Rows(store), batch_size=8, augment=augment)
        batches[augment] = [b.as_subclass(torch.Tensor) for b in (*dls.train.one_batch(), *dls.valid.one_batch())]
    (ax, ay, avx, avy), (px, py, pvx, pvy) = batches[True], batches[False]
    assert not torch.allclose(ax, px) and not torch.equal(ay, py)  # same images, same order: augmented
    assert torch.equal(avx, pvx) and torch.equal(avy, pvy)
