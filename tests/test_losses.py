from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F

from clothparse.models.losses import CompoundLoss


class Out(NamedTuple):      # same shape as clothparse.models.SegOutput
    seg: torch.Tensor
    classes: torch.Tensor | None
    boxes: torch.Tensor | None


def _batch(seed=0, b=3, h=6, w=5):
    g = torch.Generator().manual_seed(seed)
    seg = torch.randn(b, 9, h, w, generator=g, requires_grad=True)
    classes = torch.randn(b, 8, generator=g, requires_grad=True)
    boxes = torch.randn(b, 32, generator=g, requires_grad=True)
    target = torch.zeros(b, h, w, dtype=torch.long)
    target[0, 1:4, 1:3] = 1         # top
    target[0, 5, 4] = 7             # shoe
    target[1, :, :] = 6             # dress everywhere
    target[1, 0, 0] = 0
    # image 2: background only
    return Out(seg, classes, boxes), target


def _reference(pred, target):
    """The three terms recomputed with plain torch ops, independent of the module's code path."""
    seg, classes, boxes = pred
    b, _, h, w = seg.shape
    # weighted CE: Σ w_y · (−log p_y) / Σ w_y with w = 1 for background, 2 otherwise
    logp = torch.log_softmax(seg, 1)
    nll = -logp.gather(1, target[:, None]).squeeze(1)
    wpix = torch.where(target == 0, 1.0, 2.0)
    ce = (wpix * nll).sum() / wpix.sum()
    present = torch.stack([(target == c).flatten(1).any(1) for c in range(1, 9)], 1).float()
    p = torch.sigmoid(classes)
    bce = -(present * torch.log(p) + (1 - present) * torch.log(1 - p)).mean()
    # boxes by hand, python loops (small)
    gt = torch.zeros(b, 8, 4)
    for i in range(b):
        for c in range(1, 9):
            ys, xs = torch.nonzero(target[i] == c, as_tuple=True)
            if len(ys):
                gt[i, c - 1] = torch.tensor([xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h])
    d = (torch.sigmoid(boxes).view(b, 8, 4) - gt).abs()
    sl1 = torch.where(d < 1, 0.5 * d ** 2, d - 0.5)
    sel = present.bool()
    box = sl1[sel].mean() if sel.any() else torch.tensor(0.0)
    return ce, bce, box


def test_terms_match_independent_recomputation():
    pred, target = _batch()
    loss_fn = CompoundLoss()
    loss = loss_fn(pred, target)
    with torch.no_grad():
        ce, bce, box = _reference(pred, target)
    t = loss_fn.last_terms
    assert t["seg"] == pytest.approx(float(ce), rel=1e-5)
    assert t["cls"] == pytest.approx(float(bce), rel=1e-5)
    assert t["box"] == pytest.approx(float(box), rel=1e-5)
    assert loss.item() == pytest.approx(float(ce + 0.5 * bce + 75 * box), rel=1e-5)
    assert t["total"] == pytest.approx(loss.item())
    loss.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in pred)


def test_multipliers_and_class_weights_are_used():
    pred, target = _batch(seed=1)
    base = CompoundLoss()
    base(pred, target)
    t = base.last_terms
    custom = CompoundLoss(seg_weight=3.0, class_weight=0.0, box_weight=1.0)
    assert custom(pred, target).item() == pytest.approx(3 * t["seg"] + t["box"], rel=1e-5)
    # equal CE weights → plain (unweighted) mean cross-entropy
    plain = CompoundLoss(fg_weight=1.0, class_weight=0, box_weight=0)
    assert plain(pred, target).item() == pytest.approx(F.cross_entropy(pred.seg, target).item(), rel=1e-5)
    assert t["seg"] != pytest.approx(F.cross_entropy(pred.seg, target).item(), rel=1e-3)


def test_box_term_only_over_present_classes():
    pred, target = _batch(seed=2)
    loss_fn = CompoundLoss()
    loss_fn(pred, target)
    before = loss_fn.last_terms["box"]
    # changing the box logits of an absent class (image 0, bag) must not change the box term
    boxes = pred.boxes.detach().clone().view(3, 8, 4)
    boxes[0, 7] += 5.0
    boxes[2] -= 3.0                 # image 2 has no clothing at all
    loss_fn(Out(pred.seg, pred.classes, boxes.view(3, 32)), target)
    assert loss_fn.last_terms["box"] == pytest.approx(before, rel=1e-6)


def test_box_term_is_a_connected_zero_without_clothing():
    pred, _ = _batch(seed=3)
    target = torch.zeros(3, 6, 5, dtype=torch.long)
    loss_fn = CompoundLoss()
    loss = loss_fn(pred, target)
    assert loss_fn.last_terms["box"] == 0.0
    loss.backward()
    assert pred.boxes.grad is not None and pred.boxes.grad.abs().sum() == 0
    assert pred.seg.grad.abs().sum() > 0


def test_baselines_give_the_segmentation_term_only():
    pred, target = _batch(seed=4)
    loss_fn = CompoundLoss()
    full = loss_fn(pred, target)
    seg = loss_fn.last_terms["seg"]
    for p in (pred.seg, (pred.seg,), Out(pred.seg, None, None), (pred.seg, None, None)):
        loss = loss_fn(p, target)
        assert set(loss_fn.last_terms) == {"seg", "total"}
        assert loss.item() == pytest.approx(seg, rel=1e-6)
    assert full.item() > seg
    # ClassBranch only
    loss_fn(Out(pred.seg, pred.classes, None), target)
    assert set(loss_fn.last_terms) == {"seg", "cls", "total"}


def test_per_image_and_reduction_none():
    pred, target = _batch(seed=5)
    loss_fn = CompoundLoss()
    per = loss_fn.per_image(pred, target)
    assert per.shape == (3,)
    for i in range(3):
        one = Out(*(t[i:i + 1] for t in pred))
        assert per[i].item() == pytest.approx(loss_fn(one, target[i:i + 1]).item(), rel=1e-5)
    loss_fn.reduction = "none"      # what fastai's get_preds(with_loss=True) does
    assert torch.allclose(loss_fn(pred, target), per)


def test_fp16_logits_give_an_fp32_loss():
    pred, target = _batch(seed=6)
    half = Out(*(t.detach().half() for t in pred))
    loss = CompoundLoss()(half, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_activation_and_decodes():
    pred, _ = _batch(seed=7)
    loss_fn = CompoundLoss()
    act = loss_fn.activation(pred)
    assert isinstance(act, Out)
    assert torch.allclose(act.seg.sum(1), torch.ones(3, 6, 5))
    assert torch.allclose(act.classes, torch.sigmoid(pred.classes))
    assert torch.equal(loss_fn.decodes(act), pred.seg.argmax(1))
    assert torch.equal(loss_fn.decodes(pred.seg), pred.seg.argmax(1))
    assert loss_fn.activation((pred.seg, None, None))[1] is None


def test_shape_errors_are_clear():
    pred, target = _batch()
    with pytest.raises(ValueError, match="do not match target"):
        CompoundLoss()(pred, target[:, :5])
    with pytest.raises(ValueError, match="class logits"):
        CompoundLoss()(Out(pred.seg, pred.classes[:, :7], None), target)
    with pytest.raises(ValueError, match="integer mask"):
        CompoundLoss()(pred, target.float())
