"""Evaluation of a run. ``evaluate_split`` on a hand-made store and a model whose answers are known pixel by pixel
(it reads each pixel's class from the photo, calls tops dresses unless its prior rules a dress out, and bags
shoes): every injection variant's confusion matrix, the per-image matrices in the order asked for, the kept
masks, the per-image loss and class logits. ``evaluate`` on an untrained model and a tiny prepared store: the
files it writes agree with each other, it is keyed (reused, redone with ``force`` or another prior), and it
refuses a run that is not finished before any data work."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from fake_runs import make_fake_runs
from safetensors.torch import save_file
from torch import nn

from clothparse.categories import CLASSES, CLOTHING
from clothparse.evaluation.evaluate import VARIANTS, evaluate, evaluate_split, variant_prior
from clothparse.evaluation.metrics import ConfusionMatrix, iou_summary
from clothparse.models.base import SegOutput
from clothparse.models.losses import CompoundLoss
from clothparse.runs import RunDir, write_json

TOP, PANTS, DRESS, SHOE, BAG = (CLASSES.index(c) for c in ("top", "pants", "dress", "shoe", "bag"))
#: (mean, std) that leave x = pixel / 255, so the oracle reads the class back exactly
PLAIN_STATS = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])


class Oracle(nn.Module):
    """The class of each pixel from its red value (25 × class), with two mistakes: a top is called a dress (by
    10 logits) unless the prior says there is no dress; a bag is called a shoe whatever the prior. Class logits:
    ±4 for the classes of its own answer."""

    def forward(self, x, prior=None):
        cls = (x[:, 0] * 255 / 25).round().long()
        seg = 4.0 * F.one_hot(cls, len(CLASSES)).permute(0, 3, 1, 2).float()
        dress_bias = 10.0 * (cls == TOP).float()
        if prior is not None:
            dress_bias = dress_bias * (prior[:, DRESS - 1] != 0).float()[:, None, None]
        seg[:, DRESS] += dress_bias
        seg[:, SHOE] += 10.0 * (cls == BAG).float()
        present = torch.stack([(seg.argmax(1) == c).any((1, 2)) for c in range(1, len(CLASSES))], 1)
        return SegOutput(seg, torch.where(present, 4.0, -4.0))


def hand_store():
    """Four 8×8 photos: (0) top over pants, a bag; (1) dress, shoes; (2) top, bag, shoes; (3) background."""
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[0, :4] = TOP
    masks[0, 4:, :4] = PANTS
    masks[0, 4:, 4:] = BAG
    masks[1, :6] = DRESS
    masks[1, 6:] = SHOE
    masks[2, :3] = TOP
    masks[2, 3:5] = BAG
    masks[2, 5:] = SHOE
    images = np.repeat((masks * 25)[..., None], 3, axis=3).astype(np.uint8)
    return SimpleNamespace(images=images, masks=masks)


def expected_predictions(masks) -> dict:
    """What the oracle answers in each variant, written from the masks by hand."""
    plain = masks.copy()
    plain[masks == TOP] = DRESS                   # no prior: every top is a dress
    plain[masks == BAG] = SHOE
    gt = masks.copy()                             # the prior says which photos have a dress: 1 has, 0 and 2 not
    gt[masks == BAG] = SHOE
    gt_hard = gt.copy()                           # ... and forbids the absent classes: photo 0 has no shoe
    gt_hard[0][masks[0] == BAG] = BAG
    user = gt.copy()                              # "-dress", hard: no dress anywhere, its pixels background
    user[masks == DRESS] = 0
    return {"plain": plain, "gt": gt, "gt_hard": gt_hard, "no_dress": gt.copy(), "user": user}


def confusion(pred, gt) -> np.ndarray:
    cm = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    np.add.at(cm, (gt.ravel().astype(int), pred.ravel().astype(int)), 1)
    return cm


def same(a: dict, b: dict) -> bool:
    """Equal summaries (an absent class's IoU is NaN, which equals nothing, so compared as JSON)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_variant_priors_from_the_ground_truth():
    present = torch.tensor([[True, False, False, False, False, True, False, False],
                            [False] * 8])
    assert variant_prior("plain", present) is None
    for v in ("gt", "gt_hard"):
        assert torch.equal(variant_prior(v, present), present.float())
    nd = variant_prior("no_dress", present)
    dress = CLOTHING.index("dress")
    assert nd[:, dress].tolist() == [1.0, 0.0] and torch.isnan(nd[:, [c for c in range(8) if c != dress]]).all()
    with pytest.raises(ValueError, match="unknown injection variant 'user'"):
        variant_prior("user", present)
    assert VARIANTS == ("plain", "gt", "gt_hard", "no_dress")


def test_each_variant_scores_the_models_known_answers():
    store = hand_store()
    indices = np.array([2, 0, 3, 1])                 # not in store order, in two batches
    res = evaluate_split(Oracle(), store, indices, batch_size=3, variants=(*VARIANTS, "user"), keep=[1, 2],
                         progress=False, user_prior=torch.tensor([np.nan] * 5 + [0.0] + [np.nan] * 2),
                         user_hard=True, stats=PLAIN_STATS)
    want = expected_predictions(store.masks)
    assert np.array_equal(res["indices"], indices)
    for v in (*VARIANTS, "user"):
        cm = confusion(want[v], store.masks)
        assert np.array_equal(res[v]["confusion"], cm), v
        assert same(res[v]["summary"], iou_summary(cm)), v
        per = res[v]["per_image_confusion"]
        assert per.shape == (4, 9, 9), v
        for k, row in enumerate(indices):        # in the order asked for
            assert np.array_equal(per[k], confusion(want[v][row], store.masks[row])), (v, row)
        assert set(res["kept"][v]) == {1, 2}
        for row in (1, 2):
            assert res["kept"][v][row].dtype == np.uint8 and np.array_equal(res["kept"][v][row], want[v][row])
    # the numbers by hand: 56 top pixels called dress, 32 bag pixels called shoes, nothing else wrong
    plain = res["plain"]["confusion"]
    assert plain[TOP, DRESS] == 32 + 24 and plain[BAG, SHOE] == 16 + 16
    assert plain.sum() - np.trace(plain) == 56 + 32 and plain[TOP, TOP] == 0
    assert res["gt_hard"]["confusion"][BAG, BAG] == 16 and res["user"]["confusion"][DRESS, 0] == 48
    assert same(res["summary"], res["plain"]["summary"])
    # the plain variant's loss and class logits, per image in the order asked for
    x = torch.from_numpy(store.images[indices]).permute(0, 3, 1, 2).float() / 255
    out = Oracle()(x)
    target = torch.from_numpy(store.masks[indices].astype(np.int64))
    assert np.allclose(res["per_image_loss"], CompoundLoss().per_image(out, target).numpy(), atol=1e-6)
    assert np.array_equal(res["class_logits"], out.classes.numpy())
    assert res["gt_present"].tolist() == [[c in store.masks[r] for c in range(1, 9)] for r in indices]


def test_mirror_averaging_a_pixelwise_model_changes_nothing_and_a_plain_module_is_called_without_prior():
    store = hand_store()

    class SegOnly(nn.Module):                         # no prior argument, one output: as many simple models
        def forward(self, x):
            return SegOutput(Oracle()(x).seg)

    plain = evaluate_split(SegOnly(), store, np.arange(4), progress=False, stats=PLAIN_STATS)
    tta = evaluate_split(SegOnly(), store, np.arange(4), progress=False, stats=PLAIN_STATS, tta=True)
    assert np.array_equal(plain["plain"]["confusion"], confusion(expected_predictions(store.masks)["plain"],
                                                                 store.masks))
    assert np.array_equal(tta["plain"]["confusion"], plain["plain"]["confusion"])
    assert plain["class_logits"] is None and plain["kept"] == {"plain": {}}
    assert np.allclose(tta["per_image_loss"], plain["per_image_loss"])  # the loss stays the batch's own
    # a variant list without plain: its first variant is the summary
    gt_only = evaluate_split(Oracle(), store, np.arange(4), progress=False, stats=PLAIN_STATS, variants=("gt",))
    assert same(gt_only["summary"], gt_only["gt"]["summary"]) and gt_only["per_image_loss"].shape == (0,)


def test_a_user_prior_is_checked():
    store = hand_store()
    with pytest.raises(ValueError, match="the 'user' variant needs user_prior"):
        evaluate_split(Oracle(), store, np.arange(4), progress=False, variants=("user",))
    with pytest.raises(ValueError, match="user_prior has 3 rows for 4 images"):
        evaluate_split(Oracle(), store, np.arange(4), progress=False, variants=("user",), user_prior=np.zeros((3, 8)))
    # one row per image: photo 1 is told it has no dress (soft), the others nothing
    rows = np.full((4, 8), np.nan)
    rows[1, DRESS - 1] = 0.0
    res = evaluate_split(Oracle(), store, np.arange(4), progress=False, variants=("plain", "user"), user_prior=rows,
                         stats=PLAIN_STATS)
    assert np.array_equal(res["user"]["confusion"], res["plain"]["confusion"])  # photo 1 has no top to change
    rows[:, DRESS - 1] = 0.0
    res = evaluate_split(Oracle(), store, np.arange(4), progress=False, variants=("user",), user_prior=rows,
                         stats=PLAIN_STATS)
    assert res["user"]["confusion"][TOP, TOP] == 56 and res["user"]["confusion"][DRESS, DRESS] == 48  # soft


# --- evaluate(): a run folder ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_fake_runs(tmp_path_factory.mktemp("evaluate"))


@pytest.fixture(scope="module")
def untrained_run(env, tmp_path_factory):
    """A finished run of an untrained U-Net on the fake runs' 32×32 store."""
    from clothparse.models import build_model

    torch.manual_seed(0)
    net = build_model("unet", input_size=(32, 32), encoder_weights=None)
    run = RunDir(tmp_path_factory.mktemp("evaluate-run") / "unet-untrained")
    run.path.mkdir()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(run.weights_path))
    write_json(run.params_path, {"model": "unet", "variant": "refined", "size": [32, 32], "classes": list(CLASSES),
                                 "normalisation": "imagenet", "profile_full": env["profile"].to_dict()})
    run.mark_complete()
    return run


def test_evaluate_writes_files_that_agree_with_each_other(env, untrained_run):
    prepared, store = env["prepared"], env["store"]
    out = evaluate(untrained_run.path, prepared=prepared, progress=False, device="cpu")
    ev = untrained_run.evaluation("test")
    assert out == ev.path and ev.is_complete()
    rows = prepared.indices("test")
    metrics = json.loads(ev.metrics_path.read_text())
    assert metrics["split"] == "test" and metrics["n_images"] == len(rows) == 8 and metrics["tta"] is False
    assert metrics["store_key"] == store.meta["key"] and metrics["device"] == "cpu"
    assert set(metrics["variants"]) == set(VARIANTS) and "classbranch" not in metrics and "user_prior" not in metrics
    for key in ("pixel_accuracy", "mean_overall", "mean_excl_bg", "pooled_excl_bg", "pooled_overall"):
        assert all(np.isfinite(metrics["variants"][v][key]) for v in VARIANTS), key
    assert not ev.class_logits_path.exists()                     # a plain U-Net has no ClassBranch
    preds = np.load(ev.predictions_path)
    assert np.array_equal(preds["rows"], rows)                   # the qualitative sample holds the whole split
    gt = np.asarray(store.masks[rows]).astype(np.int64)
    for v in VARIANTS:
        cm = ConfusionMatrix().update(torch.from_numpy(preds[v].astype(np.int64)), torch.from_numpy(gt)).matrix
        assert np.array_equal(np.load(ev.confusion_path(v)), cm), v
        assert same(metrics["variants"][v], iou_summary(cm)), v
        assert np.array_equal(ev.per_image_confusion(v).sum(0), cm), v
        assert cm.sum() == gt.size
    per_image = pd.read_csv(ev.per_image_path)
    assert per_image["row"].tolist() == rows.tolist()
    assert per_image["image_id"].tolist() == [store.image_ids[r] for r in rows]
    assert np.isfinite(per_image["loss"]).all() and (per_image["loss"] > 0).all()
    assert per_image["gt_dress"].tolist() == [bool((m == DRESS).any()) for m in gt]


def test_evaluate_is_keyed_on_split_prior_and_hard(env, untrained_run):
    prepared = env["prepared"]
    ev = untrained_run.evaluation("test")
    evaluate(untrained_run.path, prepared=prepared, progress=False, device="cpu")
    stamp = json.loads((ev.path / "COMPLETE").read_text())["finished"]
    mtime = ev.metrics_path.stat().st_mtime_ns
    evaluate(untrained_run.path, prepared=prepared, progress=False, device="cpu")   # reused as it is
    assert ev.metrics_path.stat().st_mtime_ns == mtime
    out = evaluate(untrained_run.path, prepared=prepared, progress=False, device="cpu", prior="-dress", hard=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert ev.metrics_path.stat().st_mtime_ns != mtime                              # another prior: redone
    assert metrics["user_prior"]["hard"] is True and metrics["user_prior"]["prior"][DRESS - 1] == 0.0
    user = np.load(out / "confusion_user.npy")
    assert user[:, DRESS].sum() == 0 and user.sum() == np.load(out / "confusion_plain.npy").sum()
    assert "user" in np.load(ev.per_image_confusion_path).files
    record = json.loads((out / "COMPLETE").read_text())
    assert record["prior"] == "-dress" and record["hard"] is True and record["finished"] >= stamp
    mtime = ev.metrics_path.stat().st_mtime_ns
    evaluate(untrained_run.path, prepared=prepared, progress=False, device="cpu", prior="-dress", hard=True,
             force=True)
    assert ev.metrics_path.stat().st_mtime_ns != mtime                              # force: redone


def test_evaluate_refuses_an_unfinished_run_and_an_empty_split(env, untrained_run, tmp_path):
    unfinished = RunDir(tmp_path / "unet-unfinished")
    unfinished.path.mkdir()
    write_json(unfinished.params_path, json.loads(untrained_run.params_path.read_text()))
    with pytest.raises(FileNotFoundError, match="the run is not complete"):
        evaluate(unfinished.path, prepared=None, progress=False)          # before any data work
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        evaluate(tmp_path / "nowhere", progress=False)
    with pytest.raises(ValueError, match="split 'holdout' is empty"):
        evaluate(untrained_run.path, split="holdout", prepared=env["prepared"], progress=False, device="cpu")
    assert not untrained_run.evaluation("holdout").is_complete()
