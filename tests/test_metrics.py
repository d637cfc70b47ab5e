from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, f1_score, fbeta_score, jaccard_score

from clothparse.categories import CLASSES, CLOTHING
from clothparse.evaluation.metrics import (
    ConfusionMatrix,
    column_percent,
    iou_summary,
    mask_iou,
    mean_iou,
    multilabel_scores,
    per_class_iou,
    pixel_accuracy,
    pooled_iou,
    row_percent,
    summary_text,
)
from clothparse.training.metrics import PooledIoU


def _random_labels(seed, n=2000, k=9):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k, n)
    # predictions right ~60 % of the time, so the IoUs are not all tiny
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))
    return p, t


def test_confusion_matrix_matches_sklearn_and_merges():
    p, t = _random_labels(0)
    cm = ConfusionMatrix(9)
    cm.update(torch.from_numpy(p[:1500]).view(15, 10, 10), torch.from_numpy(t[:1500]).view(15, 10, 10))
    other = ConfusionMatrix(9).update(torch.from_numpy(p[1500:]).to(torch.uint8), torch.from_numpy(t[1500:]))
    want = confusion_matrix(t, p, labels=range(9))
    assert cm.merge(other).matrix.dtype == np.int64
    assert np.array_equal((cm + other).matrix, want)
    big = ConfusionMatrix(9).update(torch.from_numpy(p), torch.from_numpy(t))
    assert np.array_equal(big.matrix, want)
    big.update(torch.from_numpy(p), torch.from_numpy(t))   # accumulates
    assert np.array_equal(big.matrix, 2 * want)
    big.reset()
    assert big.matrix.sum() == 0


def test_ignore_index_and_invalid_labels():
    t = torch.tensor([0, 1, 255, 2, 255])
    p = torch.tensor([0, 1, 1, 1, 7])
    m = ConfusionMatrix(9, ignore_index=255).update(p, t).matrix
    assert m.sum() == 3 and m[2, 1] == 1
    bad = ConfusionMatrix(9).update(torch.tensor([0, 9]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="1 pixels had a label outside 0..8"):
        bad.matrix
    with pytest.raises(ValueError, match="same shape"):
        ConfusionMatrix(9).update(torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="argmax"):
        ConfusionMatrix(9).update(torch.zeros(3), torch.zeros(3, dtype=torch.long))


def test_ious_match_sklearn():
    p, t = _random_labels(1)
    p[p == 4] = 0                    # class 4 never predicted
    t[t == 4] = 0                    # ... nor in the ground truth → NaN IoU, skipped by the mean
    cm = ConfusionMatrix(9).update(torch.from_numpy(p), torch.from_numpy(t)).matrix
    pc = per_class_iou(cm)
    ref = jaccard_score(t, p, labels=range(9), average=None, zero_division=0)
    assert np.isnan(pc[4]) and ref[4] == 0   # sklearn says 0 where we say "undefined"
    assert np.isnan(row_percent(cm)[4]).all()
    np.testing.assert_allclose(np.delete(pc, 4), np.delete(ref, 4))
    fg = [c for c in range(1, 9) if c != 4]
    assert pooled_iou(cm) == pytest.approx(jaccard_score(t, p, labels=fg, average="micro"))
    assert pooled_iou(cm, include_background=True) == pytest.approx(
        jaccard_score(t, p, labels=[0] + fg, average="micro"))
    assert mean_iou(cm) == pytest.approx(jaccard_score(t, p, labels=fg, average="macro"))
    assert mean_iou(cm, include_background=True) == pytest.approx(
        jaccard_score(t, p, labels=[0] + fg, average="macro"))
    assert mask_iou(cm) == pytest.approx(jaccard_score(t > 0, p > 0))
    np.testing.assert_allclose(np.nan_to_num(row_percent(cm)),
                               100 * confusion_matrix(t, p, labels=range(9), normalize="true"))
    np.testing.assert_allclose(np.nan_to_num(column_percent(cm)),
                               100 * confusion_matrix(t, p, labels=range(9), normalize="pred"))
    s = iou_summary(cm)
    assert s["pooled_excl_bg"] == pytest.approx(100 * pooled_iou(cm))
    assert s["mask"] == pytest.approx(100 * mask_iou(cm))
    assert list(s["per_class"]) == list(CLASSES)
    assert s["per_class"]["top"] == pytest.approx(100 * ref[1])


def test_pooled_differs_from_mean_when_classes_differ_in_size():
    # a large well-predicted class and a tiny badly predicted one
    cm = np.zeros((3, 3), dtype=np.int64)
    cm[0, 0] = 100
    cm[1, 1], cm[1, 0] = 90, 10
    cm[2, 2], cm[2, 1] = 1, 9
    assert pooled_iou(cm) == pytest.approx(91 / (100 + 10 + 9))   # ΣTP / Σ(TP+FP+FN)
    assert mean_iou(cm) == pytest.approx((90 / 109 + 1 / 10) / 2)


def test_the_peers_numbers_of_a_hand_made_matrix():
    # rows = ground truth; class 3 is absent from both ground truth and prediction, class 2 only predicted
    cm = np.array([[50, 5, 5, 0],
                   [10, 30, 0, 0],
                   [0, 0, 0, 0],
                   [0, 0, 0, 0]])
    assert pixel_accuracy(cm) == pytest.approx(80 / 100)                  # trace / sum
    iou_bg, iou_1, iou_2 = 50 / (60 + 60 - 50), 30 / (40 + 35 - 30), 0.0  # class 3: 0/0, left out of the means
    assert mean_iou(cm, include_background=True) == pytest.approx((iou_bg + iou_1 + iou_2) / 3)
    assert mean_iou(cm, include_background=False) == pytest.approx((iou_1 + iou_2) / 2)
    s = iou_summary(cm, class_names=("bg", "a", "b", "c"))
    assert s["pixel_accuracy"] == pytest.approx(80.0)
    assert s["mean_overall"] == pytest.approx(100 * (iou_bg + iou_1) / 3)
    assert s["mean_excl_bg"] == pytest.approx(100 * iou_1 / 2)
    assert s["pooled_excl_bg"] == pytest.approx(100 * 30 / (45 + 5))      # the paper's numbers unchanged
    assert np.isnan(pixel_accuracy(np.zeros((3, 3))))


def test_the_summary_text_labels_every_number():
    cm = np.diag([5, 3, 2, 0, 0, 0, 0, 0, 0])
    text = summary_text(iou_summary(cm))
    assert "pixel accuracy, all classes (as CCP reports)" in text and "100.00 %" in text
    assert "mean IoU with background" in text and "mean IoU excl. background" in text
    assert "IoU excl. background, pooled (the paper's)" in text
    old = {k: v for k, v in iou_summary(cm).items() if k != "pixel_accuracy"}  # an evaluation from before
    line = next(x for x in summary_text(old).splitlines() if x.startswith("pixel accuracy"))
    assert line.endswith("–")


def _random_multilabel(seed, b=200, c=8):
    rng = np.random.default_rng(seed)
    t = rng.random((b, c)) < 0.3
    p = np.where(rng.random((b, c)) < 0.8, t, ~t)
    t[0], p[0] = False, False        # an image with nothing to find and nothing predicted
    p[:, 5] = False                  # a class never predicted
    return t, p


def test_multilabel_scores_match_sklearn():
    t, p = _random_multilabel(0)
    s = multilabel_scores(torch.from_numpy(t), torch.from_numpy(p))
    for avg in ("samples", "micro", "macro"):
        assert s["f1"][avg] == pytest.approx(100 * f1_score(t, p, average=avg, zero_division=1.0))
        assert s["f2"][avg] == pytest.approx(100 * fbeta_score(t, p, beta=2, average=avg, zero_division=1.0))
    assert s["exact_match"] == pytest.approx(100 * np.mean((t == p).all(1)))
    assert list(s["per_class_accuracy"]) == list(CLOTHING)
    assert s["per_class_accuracy"]["skirt"] == pytest.approx(100 * np.mean(t[:, 4] == p[:, 4]))
    assert s["n_images"] == 200
    with pytest.raises(ValueError, match="B×C"):
        multilabel_scores(t[:, :7], p)


def test_fastai_metrics_accumulate_from_learner_state():
    g = torch.Generator().manual_seed(0)
    metrics = [PooledIoU(), PooledIoU(include_background=True)]
    assert [m.name for m in metrics] == ["iou_excl_bg", "iou_overall"]
    cm = ConfusionMatrix(9)
    for m in metrics:
        m.reset()
    for step in range(2):
        seg = torch.randn(2, 9, 4, 5, generator=g)
        y = torch.randint(0, 9, (2, 4, 5), generator=g)
        # fastai's interface: learn.pred (a model output tuple) and learn.yb (a tuple of targets)
        learn = SimpleNamespace(pred=(seg, torch.randn(2, 8), None) if step else seg, yb=(y,))
        for m in metrics:
            m.accumulate(learn)
        cm.update(seg.argmax(1), y)
    assert metrics[0].value == pytest.approx(pooled_iou(cm.matrix))
    assert metrics[1].value == pytest.approx(pooled_iou(cm.matrix, include_background=True))
    metrics[0].reset()
    assert np.isnan(metrics[0].value)


def test_inside_a_fastai_learner():
    """CompoundLoss and PooledIoU under fastai's own fit / get_preds conventions (tuple model output)."""
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner
    from torch import nn
    from torch.utils.data import TensorDataset

    from clothparse.models.losses import CompoundLoss

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.seg, self.cls, self.box = nn.Conv2d(3, 9, 1), nn.Linear(3, 8), nn.Linear(3, 32)

        def forward(self, x):
            g = x.mean((2, 3))
            return self.seg(x), self.cls(g), self.box(g)

    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 9, (8, 8, 8))
    dls = DataLoaders(DataLoader(TensorDataset(x, y), bs=4, shuffle=True), DataLoader(TensorDataset(x, y), bs=4))
    loss_fn = CompoundLoss()
    learn = Learner(dls, Tiny(), loss_func=loss_fn, metrics=[PooledIoU(), PooledIoU(include_background=True)])
    with learn.no_logging():
        learn.fit(1, 1e-2)
    iou_excl_bg, iou_overall = learn.recorder.values[-1][2:4]
    preds, targs, decoded, losses = learn.get_preds(with_input=False, with_loss=True, with_decoded=True)
    cm = ConfusionMatrix(9).update(decoded, targs)
    assert iou_excl_bg == pytest.approx(pooled_iou(cm.matrix))
    assert iou_overall == pytest.approx(pooled_iou(cm.matrix, include_background=True))
    assert torch.allclose(preds[0].sum(1), torch.ones(8, 8, 8), atol=1e-5)     # activation: softmax
    with torch.no_grad():
        raw = learn.model(x)
    assert torch.allclose(losses, loss_fn.per_image(raw, y), atol=1e-5)        # reduction='none'
    assert loss_fn.reduction == "mean"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_same_as_cpu():
    """Boxes, loss (fp16 autocast → fp32 loss) and confusion counts on the GPU equal the CPU results."""
    from clothparse.models.boxes import boxes_from_masks
    from clothparse.models.losses import CompoundLoss

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 9, (4, 32, 24), generator=g)
    y[3] = 0
    seg = torch.randn(4, 9, 32, 24, generator=g)
    cls, box = torch.randn(4, 8, generator=g), torch.randn(4, 32, generator=g)
    b_cpu, p_cpu = boxes_from_masks(y)
    b_gpu, p_gpu = boxes_from_masks(y.cuda())
    assert b_gpu.device.type == "cuda" and torch.equal(p_gpu.cpu(), p_cpu)
    # CUDA divides by a Python scalar as a multiplication by its reciprocal: boxes may differ by one ulp
    torch.testing.assert_close(b_gpu.cpu(), b_cpu, rtol=0, atol=1e-6)
    loss_fn = CompoundLoss()
    cpu = loss_fn((seg, cls, box), y).item()
    with torch.autocast("cuda", dtype=torch.float16):
        gpu = loss_fn((seg.cuda().half(), cls.cuda().half(), box.cuda().half()), y.cuda())
    assert gpu.dtype == torch.float32 and gpu.item() == pytest.approx(cpu, rel=1e-2)
    cm = ConfusionMatrix(9).update(seg.argmax(1), y).matrix
    cm_gpu = ConfusionMatrix(9)
    cm_gpu.update(seg.cuda().argmax(1), y.cuda())
    assert cm_gpu._pending.device.type == "cuda"          # counted on the device, not moved per batch
    assert np.array_equal(cm_gpu.matrix, cm)
