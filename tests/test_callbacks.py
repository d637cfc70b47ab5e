"""The training callbacks that guard a run: a non-finite loss stops it, saying where, on every path."""
import pytest
import torch
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from torch.utils.data import TensorDataset

from clothparse.training.callbacks import FiniteLossGuard, NonFiniteLossError


class _NanAt:
    """MSE that turns NaN from the ``at``-th call on (as a diverging run does: it stays NaN)."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self, pred, y):
        self.calls += 1
        loss = torch.nn.functional.mse_loss(pred, y)
        return loss * float("nan") if self.calls > self.at else loss


def _learner(loss, guard) -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    ds = TensorDataset(x, x.sum(1, keepdim=True))
    dls = DataLoaders.from_dsets(ds, ds, bs=4, shuffle=False, device="cpu")
    learn = Learner(dls, torch.nn.Linear(4, 1), loss_func=loss, cbs=[guard])
    learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
    learn.logger = lambda *a, **k: None
    return learn


@pytest.mark.parametrize("defer", [False, True])
def test_a_non_finite_loss_stops_training_naming_its_iteration(defer):
    # the 6th loss (iteration 5 of the 16 training batches) is the first NaN
    learn = _learner(_NanAt(5), FiniteLossGuard(check_every=4, defer=defer))
    with pytest.raises(NonFiniteLossError, match=r"at epoch 0, iteration 5 \(train"):
        learn.fit(1, lr=1e-3)
    # deferred: found at the next read-back (after iteration 7), not at the end of the epoch
    assert learn.loss_func.calls == (6 if not defer else 8)


def test_a_deferred_check_still_stops_before_the_epoch_ends():
    # the first NaN in the last training batch, between two read-backs: the end of the training pass reads it
    learn = _learner(_NanAt(15), FiniteLossGuard(check_every=50, defer=True))
    with pytest.raises(NonFiniteLossError, match="iteration 15"):
        learn.fit(1, lr=1e-3)
    assert learn.loss_func.calls == 16  # no validation batch ran


def test_finite_losses_train_undisturbed():
    learn = _learner(_NanAt(10**6), FiniteLossGuard(defer=True))
    learn.fit(2, lr=1e-2)
    assert learn.loss_func.calls == 2 * (16 + 16)
    with pytest.raises(ValueError, match="check_every"):
        FiniteLossGuard(check_every=0)
