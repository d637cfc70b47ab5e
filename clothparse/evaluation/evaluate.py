"""Evaluation of a run: one pass over a split gives the confusion matrix, every IoU variant, the
ClassBranch scores (Table 4), per-image loss (Figure 6) and the predictions the figures need, for the
plain model and for each ground-truth injection variant (Table 5, Figure 5).

Injection variants (the same code path, ``clothparse.models.injection``):

- ``plain`` — no prior;
- ``gt`` — full injection: every clothing class's presence from the ground truth (Table 5);
- ``gt_hard`` — full injection, and absent classes forbidden in the output;
- ``no_dress`` — partial injection: only the dress entry is known (from the ground truth), the rest
  unknown — on an image without a dress this is the paper's Figure 5 "no dress" prior;
- ``user`` — only when ``evaluate(prior=...)`` is given: the caller's prior (``"skirt,-dress"``, an
  8-vector for every image, or one row per image), soft or ``hard``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clothparse import runs
from clothparse.categories import CLOTHING, NUM_CLOTHING
from clothparse.datasets.prepare import prepare
from clothparse.devices import resolve_device
from clothparse.evaluation.metrics import ConfusionMatrix, iou_summary, multilabel_scores, per_image_confusion
from clothparse.images import IMAGENET_STATS, normalise_batch, stats_of
from clothparse.models.boxes import boxes_from_masks
from clothparse.models.injection import apply_hard, parse_prior
from clothparse.models.losses import CompoundLoss
from clothparse.parser.backends import mirror_average
from clothparse.runs import RunDir

VARIANTS = ("plain", "gt", "gt_hard", "no_dress")
#: Variants whose prior also forbids the classes it marks absent (``injection.apply_hard``).
HARD_VARIANTS = frozenset({"gt_hard"})
DRESS = CLOTHING.index("dress")
#: Part of an evaluation's key: raised when an evaluation writes new files, so older ones are redone.
#: 2: per-image confusion matrices (``per_image_confusion.npz``), what the bootstrap intervals resample.
#: 3: pixel accuracy in metrics.json's summaries.
EVALUATION_FORMAT = 3


def variant_prior(variant: str, present: torch.Tensor) -> torch.Tensor | None:
    """The B×8 prior of an injection variant, from ground-truth presence (B×8 bool)."""
    if variant == "plain":
        return None
    if variant in ("gt", "gt_hard"):
        return present.float()
    if variant == "no_dress":
        prior = torch.full(present.shape, float("nan"), device=present.device)
        prior[:, DRESS] = present[:, DRESS].float()
        return prior
    raise ValueError(f"unknown injection variant {variant!r}; known: {VARIANTS}")


@torch.inference_mode()
def evaluate_split(model, store, indices, device: str = "cpu", batch_size: int = 64,
                   variants: tuple[str, ...] = ("plain",), keep: np.ndarray | None = None,
                   progress: bool = True, user_prior: torch.Tensor | None = None, user_hard: bool = False,
                   stats=IMAGENET_STATS, tta: bool = False, loss_weights: dict | None = None) -> dict:
    """Evaluate ``model`` on store rows ``indices``. Returns, per variant, the confusion matrix, its summary and
    one confusion matrix per image (N×K×K int32, in ``indices`` order; ``result[variant]``), plus for
    ``plain`` per-image loss and class logits; ``result["summary"]`` is the plain summary.
    Predicted masks are kept for store rows in ``keep``.

    The variant ``"user"`` injects ``user_prior`` — an 8-vector for every image, or one row per entry of
    ``indices`` — and, with ``user_hard``, forbids the classes it marks absent. ``stats`` = (mean, std): the
    normalisation the model was trained with. ``tta``: the segmentation is the mirror average of the batch and its
    mirror image (:func:`clothparse.parser.backends.mirror_average`, what ``Parser(tta=True)`` does); class logits,
    boxes
    and the loss stay the batch's own. ``loss_weights`` (``seg``, ``cls``, ``box``; default the paper's): the
    weights of the per-image loss, the run's own (the qualitative study sorts images by it)."""
    model = model.to(device).eval()
    indices = np.asarray(indices, dtype=np.int64)
    hard_variants = HARD_VARIANTS
    if "user" in variants:
        if user_prior is None:
            raise ValueError("the 'user' variant needs user_prior")
        user_prior = torch.as_tensor(user_prior, dtype=torch.float32)
        if user_prior.ndim == 2 and len(user_prior) != len(indices):
            raise ValueError(f"user_prior has {len(user_prior)} rows for {len(indices)} images")
        if user_hard:
            hard_variants = hard_variants | {"user"}
    keep_set = set(np.asarray(keep if keep is not None else [], dtype=np.int64).tolist())
    cms = {v: ConfusionMatrix() for v in variants}
    loss_fn = CompoundLoss() if loss_weights is None else CompoundLoss(
        seg_weight=loss_weights["seg"], class_weight=loss_weights["cls"], box_weight=loss_weights["box"])
    per_image, class_logits, gt_present, kept = [], [], [], {v: {} for v in variants}
    image_counts: dict[str, list[torch.Tensor]] = {v: [] for v in variants}
    amp = device.startswith("cuda")
    batches = range(0, len(indices), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="evaluate", unit="batch")
    for start in batches:
        rows = indices[start:start + batch_size]
        sorted_rows = np.sort(rows)  # memmap reads in order; results are mapped back below
        order = np.argsort(np.argsort(rows))
        images = torch.from_numpy(np.ascontiguousarray(store.images[sorted_rows]))[order].to(device)
        target = torch.from_numpy(store.masks[sorted_rows].astype(np.int64))[order].to(device)
        x = normalise_batch(images, stats)
        _, present = boxes_from_masks(target)
        if "user" in variants:  # this batch's rows of the user's prior
            user_batch = (user_prior.expand(len(rows), -1) if user_prior.ndim == 1
                          else user_prior[start:start + len(rows)]).to(device)
        for variant in variants:
            prior = user_batch if variant == "user" else variant_prior(variant, present)
            out = _forward(model, x, prior, amp)
            seg = out[0].float()
            if tta:
                seg = mirror_average(seg, _forward(model, x.flip(-1), prior, amp)[0])
            if variant in hard_variants:
                seg = apply_hard(seg, prior)
            pred = seg.argmax(1)
            cms[variant].update(pred, target)
            image_counts[variant].append(per_image_confusion(pred, target).cpu())  # in ``indices`` order
            if variant == "plain":
                fout = type(out)(*(o.float() if o is not None else None for o in out))
                per_image.append(loss_fn.per_image(fout, target).cpu())
                gt_present.append(present.cpu())
                if out[1] is not None:
                    class_logits.append(out[1].float().cpu())
            for r, p in zip(rows.tolist(), pred.to(torch.uint8).cpu().numpy()):
                if r in keep_set:
                    kept[variant][r] = p
    result: dict = {"indices": indices}
    for v in variants:
        result[v] = {"confusion": cms[v].matrix, "summary": iou_summary(cms[v].matrix),
                     "per_image_confusion": torch.cat(image_counts[v]).numpy()}
    result["summary"] = result["plain"]["summary"] if "plain" in variants else result[variants[0]]["summary"]
    result["per_image_loss"] = torch.cat(per_image).numpy() if per_image else np.zeros(0)
    result["gt_present"] = torch.cat(gt_present).numpy() if gt_present else np.zeros((0, NUM_CLOTHING), bool)
    result["class_logits"] = torch.cat(class_logits).numpy() if class_logits else None
    result["kept"] = kept
    return result


def _forward(model, x: torch.Tensor, prior: torch.Tensor | None, amp: bool):
    """The model on a batch (fp16 autocast on a GPU); a model without a prior argument is called without one."""
    with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
        return model(x, prior=prior) if prior is not None else model(x)


def _prior_key(prior) -> str | None:
    """What identifies a user prior in the evaluation's cache key: the string itself, or a digest of the
    array (``str`` of a large array elides its middle, so two different priors could print alike)."""
    if prior is None or isinstance(prior, str):
        return prior
    values = np.ascontiguousarray(np.asarray(prior, dtype=np.float32))
    return f"array{list(values.shape)}:" + hashlib.sha256(values.tobytes()).hexdigest()[:16]


def evaluate(run_dir: Path | str, split: str = "test", prior=None, hard: bool = False, force: bool = False,
             progress: bool = True, prepared=None, device: str = "auto", tta: bool = False) -> Path:
    """Evaluate a run on a split; write ``<run>/evaluation/<split>/`` and return that folder.

    ``prior`` (one row of 8 per image of the split, in split order, or an 8-vector / "skirt,-dress" string
    for every image) adds the injection variant ``user``, soft or ``hard``; the ground-truth variants of the
    module docstring are always written. ``device`` follows :func:`clothparse.devices.resolve_device`.
    ``tta``: the parser's mirror averaging (:func:`evaluate_split`), written to ``evaluation/<split>-tta/`` beside
    the plain evaluation, which the book's tables read.
    """
    run = RunDir(run_dir)
    profile = run.profile_of(run.require_complete())  # before any data work: a wrong path fails at once
    ev = run.evaluation(split, tta=tta)
    key = {"split": split, "prior": _prior_key(prior), "hard": hard, "format": EVALUATION_FORMAT}
    folder = ev.folder({**key, "tta": True} if tta else key)
    if folder.is_complete() and not force:
        return ev.path
    device = resolve_device(device)
    model, params = run.load_model(device)
    folder.start()
    # Every run is evaluated on the same images: the (refined, where the profile refines) split.
    prepared = prepared or prepare(profile, variant="refined", progress=progress)
    idx = prepared.indices(split)
    if len(idx) == 0:
        raise ValueError(f"split {split!r} is empty")
    keep = np.sort(np.random.default_rng(0).choice(idx, size=min(profile.evaluate.qualitative_sample, len(idx)),
                                                   replace=False))
    user_prior = _user_prior(prior)
    res = evaluate_split(model, prepared.store, idx, device=device, batch_size=profile.evaluate.batch_size,
                         variants=VARIANTS + (("user",) if user_prior is not None else ()), keep=keep,
                         progress=progress, user_prior=user_prior, user_hard=hard,
                         stats=stats_of(params.get("normalisation", "imagenet")), tta=tta,
                         loss_weights=runs.loss_weights(params))
    _write_evaluation(ev, res, prepared.store, idx, keep, split, device, user_prior, hard, tta)
    folder.mark_complete(split=split, prior=_prior_key(prior), hard=hard, tta=tta)
    return ev.path


def _user_prior(prior) -> torch.Tensor | None:
    if prior is None:
        return None
    return torch.as_tensor(parse_prior(prior) if isinstance(prior, str) else prior, dtype=torch.float32)


def _write_evaluation(ev, res: dict, store, idx, keep, split: str, device: str, user_prior, hard: bool,
                      tta: bool = False) -> None:
    """Confusion matrices (pooled and per image), metrics.json, per_image.csv, predictions.npz (and class
    logits) of one pass."""
    metrics: dict = {"split": split, "n_images": int(len(idx)), "store_key": store.meta["key"], "device": device,
                     "tta": tta, "variants": {}}
    for v in VARIANTS:
        np.save(ev.confusion_path(v), res[v]["confusion"])
        metrics["variants"][v] = res[v]["summary"]
    written = VARIANTS + (("user",) if user_prior is not None else ())
    # Small for any test set (81 int32 per image and variant, mostly zeros, compressed).
    np.savez_compressed(ev.per_image_confusion_path, rows=np.asarray(idx),
                        **{v: res[v]["per_image_confusion"] for v in written})
    if res["class_logits"] is not None:
        predicted = 1 / (1 + np.exp(-res["class_logits"])) > 0.5
        metrics["classbranch"] = multilabel_scores(res["gt_present"], predicted)
        np.save(ev.class_logits_path, res["class_logits"])
    per_image = pd.DataFrame({"row": idx, "image_id": [store.image_ids[i] for i in idx],
                              "loss": res["per_image_loss"]})
    for c, name in enumerate(CLOTHING):
        per_image[f"gt_{name}"] = res["gt_present"][:, c]
    per_image.to_csv(ev.per_image_path, index=False)
    np.savez_compressed(ev.predictions_path, rows=keep,
                        **{v: np.stack([res["kept"][v][r] for r in keep]) for v in VARIANTS})
    if user_prior is not None:
        np.save(ev.confusion_path("user"), res["user"]["confusion"])
        metrics["user_prior"] = {"prior": user_prior.tolist(), "hard": hard, "summary": res["user"]["summary"]}
    runs.write_json(ev.metrics_path, metrics)
