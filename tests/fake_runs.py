"""Run folders written like train.train + evaluate.evaluate write them, without training: predictions
made by corrupting the ground truth of a tiny store, scored with the real metric, loss, store and run-folder
code. The ``fake_runs`` fixture (conftest.py) builds one set per test module; the report and claims tests
read them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from clothparse import runs
from clothparse.categories import CLASSES, CLOTHING
from clothparse.datasets.base import Sample
from clothparse.datasets.prepare import Prepared
from clothparse.datasets.store import build_store
from clothparse.evaluation.metrics import ConfusionMatrix, iou_summary, multilabel_scores, per_image_confusion
from clothparse.masks import classes_present
from clothparse.models.losses import CompoundLoss
from clothparse.profiles import load_profile
from clothparse.runs import RunDir

H = W = 32
DRESS = CLASSES.index("dress")
N_IMAGES = 24


class TinyDataset:
    """A dataset of rectangles: garments stacked top to bottom; every third image has a dress."""

    def __init__(self, n: int = N_IMAGES, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.image_ids = [f"img{i:03d}.jpg" for i in range(n)]
        self.samples = []
        for i, image_id in enumerate(self.image_ids):
            mask = np.zeros((H, W), np.uint8)
            if i % 3 == 0:
                mask[4:26, 8:24] = DRESS
            else:
                mask[4:14, 8:24] = 1 + i % 2           # top / overtop
                mask[14:26, 9:23] = 3 + (i // 2) % 3   # pants / shorts / skirt
            mask[27:31, 10:14] = 7                      # shoe
            if i % 4 == 0:
                mask[10:18, 26:31] = 8                  # bag
            image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            self.samples.append(Sample(image, mask, image_id, classes_present(mask)))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


def make_fake_runs(tmp) -> dict:
    """A tiny store and three evaluated runs (unet and extended_unet on refined data, unet on base)."""
    from conftest import tiny_profile

    profile = load_profile(tiny_profile(tmp))
    stores = profile.work_path / "stores"
    store = build_store(TinyDataset(), stores, size=(H, W), workers=0, progress=False, source="test:tiny")
    splits = np.array(["train"] * 12 + ["valid"] * 4 + ["test"] * 8)
    test_rows = np.flatnonzero(splits == "test")
    written = {}
    for i, (model, variant) in enumerate([("unet", "refined"), ("extended_unet", "refined"), ("unet", "base")]):
        written[(model, variant)] = write_fake_run(profile, model, variant, store, test_rows, seed=i,
                                               classbranch=model == "extended_unet")
    prepared = Prepared("refined", tmp / "src", tmp / "src", store,
                        pd.Series(splits, index=pd.Index(store.image_ids, name="image_id"), name="split"))
    return {"profile": profile, "store": store, "runs": written, "test_rows": test_rows, "prepared": prepared}


def seeded_runs(env, tmp_path, seeds, written):
    """A profile with ``train.seeds`` in its own runs folder, and runs of ``written`` {(model, variant): seeds}."""
    profile = load_profile(env["profile"], {"runs_dir": str(tmp_path / "runs"), "train.seeds": list(seeds)})
    out = {}
    for (model, variant), model_seeds in written.items():
        for s in model_seeds:
            out[(model, variant, s)] = write_fake_run(profile.with_seed(s), model, variant, env["store"],
                                                      env["test_rows"], seed=10 + s, classbranch=False)
    return profile, out


def corrupt(gt: np.ndarray, rng, p: float) -> np.ndarray:
    pred = gt.copy()
    flip = rng.random(gt.shape) < p
    pred[flip] = rng.integers(0, len(CLASSES), int(flip.sum()))
    return pred


def write_fake_run(profile, model, variant, store, test_rows, seed, classbranch):
    """A run folder in the layout of train.train + evaluate.evaluate, from corrupted ground truth."""
    rng = np.random.default_rng(seed)
    run = RunDir.for_training(profile, model, variant, store.key)
    run.path.mkdir(parents=True)
    runs.write_json(run.params_path, {**runs.training_params(profile, model, variant), "profile": profile.name,
                                      "store_key": store.key, "device": "cpu", "amp": False, "classes": list(CLASSES),
                                      "profile_full": profile.to_dict()})
    runs.write_json(run.provenance_path, {"git_commit": "abc123", "device": "cpu",
                                          "device_description": "CPU test", "seed": 0, "resumes": []})
    pd.DataFrame({"phase": [1, 2, 2], "epoch": [0, 0, 1], "global_epoch": [0, 1, 2], "lr": [1e-3] * 3,
                  "seconds": [1.5, 2.0, 2.5], "train_loss": [2.0, 1.5, 1.2], "valid_loss": [2.1, 1.7, 1.4],
                  "iou_excl_bg": [0.2, 0.3, 0.4], "train_seg": [1.0, 0.8, 0.7], "valid_seg": [1.1, 0.9, 0.8]}
                 ).to_csv(run.history_path, index=False)
    run.mark_complete(epochs=3)

    gt = np.asarray(store.masks[test_rows])
    preds = {"plain": corrupt(gt, rng, 0.3)}
    # the plain model paints a dress patch on two images that have none (Figure 5's situation)
    no_dress = [k for k in range(len(gt)) if not (gt[k] == DRESS).any()]
    for j, k in enumerate(no_dress[:2]):
        preds["plain"][k, 5:12 + 3 * j, 9:20] = DRESS
    preds["gt"] = corrupt(gt, rng, 0.1)
    preds["gt_hard"] = corrupt(gt, rng, 0.05)
    nd = preds["plain"].copy()
    nd[(nd == DRESS) & ~(gt == DRESS).any(axis=(1, 2))[:, None, None]] = 0
    preds["no_dress"] = nd
    ev = run.evaluation("test")
    ev.path.mkdir(parents=True)
    metrics = {"split": "test", "n_images": len(test_rows), "store_key": store.key, "variants": {}}
    for v, p in preds.items():
        cm = ConfusionMatrix().update(torch.from_numpy(p), torch.from_numpy(gt)).matrix
        np.save(ev.confusion_path(v), cm)
        metrics["variants"][v] = iou_summary(cm)
    np.savez_compressed(ev.per_image_confusion_path, rows=test_rows,
                        **{v: per_image_confusion(torch.from_numpy(p), torch.from_numpy(gt)).numpy()
                           for v, p in preds.items()})
    present = np.stack([[(m == c).any() for c in range(1, 9)] for m in gt])
    if classbranch:
        pred_present = np.stack([[(m == c).any() for c in range(1, 9)] for m in preds["plain"]])
        metrics["classbranch"] = multilabel_scores(present, pred_present)
        np.save(ev.class_logits_path, np.where(pred_present, 4.0, -4.0).astype(np.float32))
    logits = 4.0 * torch.nn.functional.one_hot(torch.from_numpy(preds["plain"]).long(), 9).permute(0, 3, 1, 2).float()
    loss = CompoundLoss().per_image(logits, torch.from_numpy(gt).long()).numpy()
    per = pd.DataFrame({"row": test_rows, "image_id": [store.image_ids[r] for r in test_rows], "loss": loss})
    for c, name in enumerate(CLOTHING):
        per[f"gt_{name}"] = present[:, c]
    per.to_csv(ev.per_image_path, index=False)
    np.savez_compressed(ev.predictions_path, rows=test_rows, **{v: p.astype(np.uint8) for v, p in preds.items()})
    runs.write_json(ev.metrics_path, metrics)
    runs.write_json(run.metrics_path, {"valid": metrics["variants"]["gt"], "epochs": 3})
    ev.folder({"split": "test", "prior": None, "hard": False}).mark_complete(split="test", prior=None, hard=False)
    return {"run_dir": run.path, "run": run, "metrics": metrics, "preds": preds, "gt": gt, "loss": loss}


def write_history(run_dir, iou, train=None, valid=None, weights=None):
    """Replace a run's ``history.csv`` as RunRecorder writes it: ``iou`` the valid IoU excl. bg (fraction) per
    epoch, ``train``/``valid`` each term's *unweighted* mean per epoch ({"seg": [...], "cls": [...], ...}), and
    ``<part>_total`` their sum weighted by ``weights`` (default: the paper's 1, 0.5, 75)."""
    weights = weights or {"seg": 1.0, "cls": 0.5, "box": 75.0}
    n = len(iou)
    h = {"phase": [1] + [2] * (n - 1), "epoch": [0] + list(range(n - 1)), "global_epoch": list(range(n)),
         "lr": [1e-3] * n, "seconds": [1.0] * n, "iou_excl_bg": list(iou)}
    for part, terms in (("train", train), ("valid", valid)):
        if terms:
            h.update({f"{part}_{t}": list(v) for t, v in terms.items()})
            h[f"{part}_total"] = [sum(weights[t] * terms[t][i] for t in terms) for i in range(n)]
            h[f"{part}_loss"] = h[f"{part}_total"]
    pd.DataFrame(h).to_csv(RunDir(run_dir).history_path, index=False)
