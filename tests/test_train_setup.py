"""What a training run takes from its profile, checked without training: the loss weights (``loss``) reach the
loss the learner trains with, and a run trained without ``--seed`` is one of the model's own seeds."""
import types

import pytest

from clothparse.models.losses import CompoundLoss
from clothparse.profiles import load_profile
from clothparse.training import train as train_mod
from clothparse.training.distributed import World

from conftest import tiny_profile


def test_the_loss_has_the_profiles_weights_the_papers_by_default(tmp_path):
    paper = train_mod.compound_loss(load_profile(tiny_profile(tmp_path)))
    assert (paper.seg_weight, paper.class_weight, paper.box_weight) == (1.0, 0.5, 75.0)
    assert paper.extra_repr() == CompoundLoss().extra_repr()
    other = train_mod.compound_loss(load_profile(tiny_profile(tmp_path), {"loss": {"seg": 2, "cls": 1, "box": 5}}))
    assert (other.seg_weight, other.class_weight, other.box_weight) == (2.0, 1.0, 5.0)


def test_the_learner_trains_with_the_profiles_loss(tmp_path, monkeypatch):
    profile = load_profile(tiny_profile(tmp_path), {"loss.box": 7.5, "loss.cls": 0})
    seen = {}
    monkeypatch.setattr(train_mod, "build_model", lambda *a, **kw: object())
    monkeypatch.setattr(train_mod, "sync_batchnorm", lambda net, *a: net)
    monkeypatch.setattr(train_mod, "make_dataloaders", lambda *a, **kw: None)

    def build_learner(net, dls, loss, **kw):
        seen["loss"] = loss
        return types.SimpleNamespace(cbs=[], remove_cbs=lambda cbs: None)
    monkeypatch.setattr(train_mod, "build_learner", build_learner)
    session = train_mod._Session(profile, run=types.SimpleNamespace(path=tmp_path), prepared=None, device="cpu",
                                 amp=False, amp_dtype="fp16", provenance={}, world=World())
    train_mod._build(session, "extended_unet", progress=False)
    loss = seen["loss"]
    assert isinstance(loss, CompoundLoss) and (loss.seg_weight, loss.class_weight, loss.box_weight) == (1.0, 0.0, 7.5)


@pytest.mark.parametrize("seed, model, trains", [(None, "unet", 1), (None, "extended_unet", 5), (2, "unet", 2),
                                                 (None, "fpn", 1)])
def test_a_run_without_a_seed_trains_one_of_the_models_seeds(tmp_path, monkeypatch, seed, model, trains):
    """``clothparse train`` without ``--seed``: train.seed where the model trains it (a one-seed profile's run,
    as before), else the model's first seed (a run the book and the tables use)."""
    seeds = {"unet": [0, 1], "extended_unet": [5]}
    profile = load_profile(tiny_profile(tmp_path, seed=1), {"train.model_seeds": seeds})
    monkeypatch.setattr(train_mod, "_train", lambda p, *a: p.train.seed)
    assert train_mod.train(profile, model, seed=seed) == trains
