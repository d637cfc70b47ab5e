"""clothparse.training.optim.adam follows fastai's Adam (decoupled wd, no wd on norm/bias) step for step."""
from functools import partial

import pytest
import torch
from torch import nn

from clothparse.training.optim import adam


def _model() -> nn.Module:
    torch.manual_seed(0)
    # convs before BatchNorm have no bias (as in ResNet): its gradient would be pure rounding noise, which
    # Adam's normalisation turns into full-size steps of random sign on a GPU's non-deterministic kernels
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def _learner(opt_func, device: str = "cpu"):
    import fastai.callback.schedule  # noqa: F401  (adds fit_one_cycle to Learner)
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 3, 8, 8, generator=g), torch.randint(0, 4, (64,), generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    dls = DataLoaders.from_dsets(ds, ds, bs=16, shuffle=False, device=device)
    model = _model().to(device)
    # two groups like clothparse's splitter: "encoder" (first conv block) / rest
    split = lambda m: [list(m[:3].parameters()), list(m[3:].parameters())]  # noqa: E731
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), opt_func=opt_func, splitter=split, wd=0.1)
    learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
    learn.logger = lambda *a, **k: None
    return learn


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (there torch picks its multi-tensor kernels)"))])
def test_adam_matches_fastai_adam_through_freeze_and_one_cycle(device, monkeypatch):
    from fastai.optimizer import Adam

    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    results = []
    for opt_func in (partial(Adam, decouple_wd=True), adam):
        learn = _learner(opt_func, device)
        learn.freeze()
        learn.fit_one_cycle(2, lr_max=1e-2)
        learn.unfreeze()
        learn.fit_one_cycle(2, lr_max=1e-2)
        results.append({k: v.detach().cpu().clone() for k, v in learn.model.state_dict().items()})
    fastai_sd, ours = results
    initial = _model().state_dict()
    for k in fastai_sd:
        torch.testing.assert_close(ours[k], fastai_sd[k], rtol=1e-4, atol=1e-5, msg=k)
        if fastai_sd[k].is_floating_point():
            assert not torch.equal(ours[k], initial[k]) or "running" in k, f"{k} never trained"


def test_weight_decay_is_decoupled_and_skips_norm_and_bias():
    """With zero gradients, Adam's update is zero: only decoupled decay moves weights — never BN or biases."""
    learn = _learner(adam)
    learn.create_opt()
    learn.opt.set_hypers(lr=0.5, wd=0.1)
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    for p in learn.model.parameters():
        p.grad = torch.zeros_like(p)
    learn.opt.step()
    for n, p in learn.model.named_parameters():
        decays = p.ndim > 1  # conv/linear weights; BN weights and all biases are 1-D
        expected = before[n] * (1 - 0.5 * 0.1) if decays else before[n]
        torch.testing.assert_close(p.detach(), expected, msg=n)


def test_hyper_parameters_keep_fastai_names():
    learn = _learner(adam)
    learn.create_opt()
    hypers = learn.opt.hypers[0]
    assert hypers["mom"] == 0.9 and hypers["sqr_mom"] == 0.99 and hypers["eps"] == 1e-5 and "wd" in hypers
    learn.opt.set_hypers(mom=0.85, wd=0.3)
    group = learn.opt.opt.param_groups[0]
    assert group["betas"] == (0.85, 0.99) and group["decoupled_wd"] == 0.3 and group["weight_decay"] == 0.0


def test_optimizer_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    learn = _learner(adam)
    learn.fit_one_cycle(1, lr_max=1e-2)
    torch.save(learn.opt.state_dict(), tmp_path / "opt.pt")
    state = torch.load(tmp_path / "opt.pt", weights_only=True)
    fresh = _learner(adam)
    fresh.create_opt()
    fresh.opt.load_state_dict(state)
    a, b = learn.opt.state_dict()["state"], fresh.opt.state_dict()["state"]
    assert a.keys() == b.keys() and len(a) > 0
    for i in a:
        for k in a[i]:
            assert torch.equal(a[i][k], b[i][k])
    with pytest.raises(ValueError):
        fresh.opt.load_state_dict({"state": {}, "param_groups": []})
