"""Training runs on a tiny synthetic store: both phases, run-folder files, resume after a real kill,
determinism, and evaluation outputs recomputed independently from the saved predictions."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clothparse import runs
from clothparse.categories import CLASSES
from clothparse.datasets.prepare import prepare
from clothparse.evaluation.evaluate import evaluate
from clothparse.evaluation.metrics import ConfusionMatrix, iou_summary
from clothparse.profiles import load_profile
from clothparse.runs import RunDir
from clothparse.training.train import train

from conftest import tiny_profile, write_profile

# end-to-end trainings, a kill and a resume: minutes
pytestmark = pytest.mark.slow

RUN_FILES = ["params.json", "provenance.json", "history.csv", "model.safetensors", "metrics.json", runs.COMPLETE]


@pytest.fixture(scope="module")
def profile(tiny_root):
    return load_profile(tiny_profile(tiny_root))


@pytest.fixture(scope="module")
def prepared(profile):
    return prepare(profile, variant="refined", progress=False)


@pytest.fixture(scope="module")
def extended_run(profile, prepared):
    return train(profile, "extended_unet", prepared=prepared, progress=False)


def test_smoke_runs_write_every_file_and_the_loss_falls(profile, prepared, extended_run):
    unet_run = train(profile, "unet", prepared=prepared, progress=False)
    for run in (extended_run, unet_run):
        for name in RUN_FILES:
            assert (run / name).is_file(), f"{run.name} lacks {name}"
        # the resume checkpoint (written every epoch: the resume test kills a run between two) is gone
        assert not (run / "checkpoints").exists(), "a complete run keeps no resume checkpoint"
        history = pd.read_csv(run / "history.csv")
        assert list(history["phase"]) == [1, 2, 2]
        # three batches an epoch are noisy: the loss falls below the first epoch's, on train and on valid
        assert history["train_total"].iloc[1:].min() < history["train_total"].iloc[0]
        assert history["valid_total"].iloc[-1] < history["valid_total"].iloc[0]
        assert np.isfinite(history["iou_excl_bg"]).all()
        params = json.loads((run / "params.json").read_text())
        assert params["size"] == list(profile.size) and "input_size" not in params  # one size key
        assert params["amp"] is False and "fp16" not in params  # a CPU run: amp: auto stays fp32
        prov = json.loads((run / "provenance.json").read_text())
        assert prov["seed"] == 0 and prov["packages"]["torch"] and prov["device"] == "cpu"
    ext = pd.read_csv(extended_run / "history.csv")
    assert {"train_seg", "train_cls", "train_box", "valid_seg", "valid_cls", "valid_box"} <= set(ext.columns)
    assert (pd.read_csv(unet_run / "history.csv").filter(like="_cls").shape[1]) == 0 or \
        pd.read_csv(unet_run / "history.csv").get("train_cls") is None
    # phase 1 froze the encoder, phase 2 trained it: its conv weights left their (seeded) initial values
    from fastai.torch_core import set_seed
    from safetensors.torch import load_file

    from clothparse.models import build_model

    set_seed(0, reproducible=True)
    initial = build_model("extended_unet", input_size=(64, 64)).state_dict()
    trained = load_file(str(extended_run / "model.safetensors"))
    conv = next(k for k in trained if k.startswith("encoder") and trained[k].ndim == 4)
    assert not torch.equal(initial[conv], trained[conv]), "the encoder was never unfrozen"
    # a completed run is reused, not retrained
    mtime = (extended_run / "model.safetensors").stat().st_mtime
    assert train(profile, "extended_unet", prepared=prepared, progress=False) == extended_run
    assert (extended_run / "model.safetensors").stat().st_mtime == mtime


def test_same_profile_twice_gives_identical_metrics(profile, prepared, extended_run, tiny_root):
    other = profile.replace({"runs_dir": str(tiny_root / "runs_again"), "train.keep_checkpoint": True})
    again = train(other, "extended_unet", prepared=prepared, progress=False)
    assert again != extended_run
    # keeping the checkpoint keeps it, and changes neither the model nor the run id
    assert again.name == extended_run.name
    assert json.loads((again / "checkpoints" / "last.json").read_text())["epochs_done"] == 2
    assert (again / "checkpoints" / "last.pt").is_file()
    a = json.loads((extended_run / "metrics.json").read_text())["valid"]
    b = json.loads((again / "metrics.json").read_text())["valid"]
    assert a == b
    pd.testing.assert_frame_equal(pd.read_csv(extended_run / "history.csv").drop(columns="seconds"),
                                  pd.read_csv(again / "history.csv").drop(columns="seconds"), check_exact=True)


def _cli(profile_path: Path, model: str) -> list[str]:
    return [sys.executable, "-m", "clothparse.cli", "train", "--profile", str(profile_path), "--model", model]


def test_resume_after_kill_equals_uninterrupted_run(profile, prepared, extended_run, tiny_root):
    killed = profile.replace({"runs_dir": str(tiny_root / "runs_killed")})
    path = write_profile(killed.to_dict(), tiny_root / "killed.yaml")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cli(path, "extended_unet"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state = None
    deadline = time.time() + 600
    try:
        # kill in the middle of phase 2's second epoch: after the checkpoint of its first epoch
        while time.time() < deadline and proc.poll() is None:
            marker = next(Path(killed.runs_dir).glob("*/*/checkpoints/last.json"), None)
            if marker is not None:
                state = json.loads(marker.read_text())
                if state["phase"] == 2 and state["epochs_done"] >= 1:
                    time.sleep(0.5)
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run_dir = marker.parent.parent
    assert not (run_dir / runs.COMPLETE).exists()
    done = subprocess.run(_cli(path, "extended_unet"), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_dir / runs.COMPLETE).is_file()
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["resumes"] and prov["resumes"][0]["phase"] == 2
    resumed = json.loads((run_dir / "metrics.json").read_text())["valid"]
    reference = json.loads((extended_run / "metrics.json").read_text())["valid"]
    history = pd.read_csv(run_dir / "history.csv")
    plain = pd.read_csv(extended_run / "history.csv")
    # every epoch once, in order, with the same numbers bit for bit: model, optimizer and every random
    # stream are identical at the resume point (same thread count: conftest pins it for subprocesses too)
    assert list(history.columns) == list(plain.columns)
    numbers = [c for c in plain.columns if c != "seconds"]
    pd.testing.assert_frame_equal(history[numbers], plain[numbers], check_exact=True)
    assert resumed == reference
    assert resumed["pooled_overall"] > 0


class _Opaque:
    """Any Python object: what a pickle payload in a checkpoint would smuggle in."""


def test_only_a_whole_checkpoint_resumes(profile, prepared, extended_run, tiny_root, capsys):
    partial = profile.replace({"runs_dir": str(tiny_root / "runs_partial")})
    run = runs.RunDir(train(partial, "extended_unet", prepared=prepared, progress=False, stop_after_epochs=1))
    assert run.checkpoint_path.is_file() and not run.is_complete()
    # a checkpoint holding pickled objects is refused, with the file named, never loaded
    torch.save({"model": _Opaque(), "opt": {}}, run.checkpoint_path)
    with pytest.raises(ValueError, match="last.pt: refused to load"):
        train(partial, "extended_unet", prepared=prepared, progress=False)
    # the state JSON without its weights (a crash between the two, a deleted file) is no resume: the run
    # starts over and says so — and, deterministic, ends exactly where an uninterrupted run ends
    run.checkpoint_path.unlink()
    capsys.readouterr()
    train(partial, "extended_unet", prepared=prepared, progress=False)
    assert "last.json without last.pt" in capsys.readouterr().out
    assert run.is_complete()
    assert "resumes" in runs.read_json(run.provenance_path) and not runs.read_json(run.provenance_path)["resumes"]
    assert list(pd.read_csv(run.history_path)["phase"]) == [1, 2, 2]
    assert runs.read_json(run.metrics_path)["valid"] == runs.read_json(extended_run / "metrics.json")["valid"]


def test_evaluate_refuses_what_is_not_a_finished_run(tmp_path, extended_run):
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        evaluate(tmp_path / "nowhere", progress=False)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "params.json").write_text(json.dumps({"model": "unet", "variant": "refined"}))
    with pytest.raises(FileNotFoundError, match="not complete"):
        evaluate(tmp_path / "half", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "params.json").write_text("{not json")
    with pytest.raises(ValueError, match="params.json: not valid JSON"):
        evaluate(tmp_path / "bad", progress=False)


def test_evaluation_outputs_match_saved_predictions(profile, prepared, extended_run):
    out = evaluate(extended_run, split="test", progress=False, prepared=prepared)
    metrics = json.loads((out / "metrics.json").read_text())
    preds = np.load(out / "predictions.npz")
    rows = preds["rows"]
    test_rows = prepared.indices("test")
    assert set(rows) == set(test_rows)  # the qualitative sample covers the tiny test split
    for variant in ("plain", "gt", "gt_hard", "no_dress"):
        cm = ConfusionMatrix()
        cm.update(torch.from_numpy(preds[variant].astype(np.int64)),
                  torch.from_numpy(prepared.store.masks[rows].astype(np.int64)))
        assert np.array_equal(cm.matrix, np.load(out / f"confusion_{variant}.npy"))
        recomputed = iou_summary(cm.matrix)
        assert recomputed["pooled_excl_bg"] == pytest.approx(metrics["variants"][variant]["pooled_excl_bg"])
        # per image: each image's own matrix, in split order; together they are the pooled one
        per_image_cm = RunDir(extended_run).evaluation("test").per_image_confusion(variant)
        assert per_image_cm.shape == (len(test_rows), 9, 9)
        assert np.array_equal(per_image_cm.sum(0), cm.matrix)
        position = {r: i for i, r in enumerate(test_rows)}
        for k, r in enumerate(rows):
            one = ConfusionMatrix().update(torch.from_numpy(preds[variant][k].astype(np.int64)),
                                           torch.from_numpy(prepared.store.masks[r].astype(np.int64)))
            assert np.array_equal(per_image_cm[position[r]], one.matrix)
    # hard injection: no pixel of a class the ground truth says is absent
    gt = prepared.store.masks[rows]
    for k, r in enumerate(rows):
        absent = set(range(1, 9)) - set(np.unique(gt[k]).tolist())
        assert not absent & set(np.unique(preds["gt_hard"][k]).tolist())
    per_image = pd.read_csv(out / "per_image.csv")
    assert len(per_image) == len(test_rows) and np.isfinite(per_image["loss"]).all()
    assert "classbranch" in metrics and 0 <= metrics["classbranch"]["exact_match"] <= 100


def test_a_mirror_averaged_evaluation_goes_beside_the_plain_one(profile, prepared, extended_run):
    """``evaluate(tta=True)`` scores the parser's mirror average in ``evaluation/<split>-tta/`` and leaves the
    plain evaluation (what the book reads) as it was."""
    from clothparse.images import normalise_batch, stats_of
    from clothparse.parser.backends import mirror_average

    plain = evaluate(extended_run, split="test", progress=False, prepared=prepared)
    before = np.load(plain / "confusion_plain.npy")
    tta = evaluate(extended_run, split="test", progress=False, prepared=prepared, tta=True)
    assert tta == plain.parent / "test-tta" and json.loads((tta / "metrics.json").read_text())["tta"] is True
    assert np.array_equal(np.load(plain / "confusion_plain.npy"), before)
    model, params = RunDir(extended_run).load_model("cpu")
    rows = prepared.indices("test")
    x = normalise_batch(torch.from_numpy(prepared.store.images[rows]), stats_of(params["normalisation"]))
    with torch.no_grad():
        seg = mirror_average(model(x)[0], model(x.flip(-1))[0])
    want = ConfusionMatrix().update(seg.argmax(1), torch.from_numpy(prepared.store.masks[rows].astype(np.int64)))
    assert np.array_equal(np.load(tta / "confusion_plain.npy"), want.matrix)
    assert not np.array_equal(want.matrix, before)


def test_a_user_prior_is_evaluated_like_the_ground_truth_variants(profile, prepared, extended_run):
    plain = evaluate(extended_run, split="test", progress=False, prepared=prepared)
    per_image = pd.read_csv(plain / "per_image.csv")
    gt = per_image[[c for c in per_image.columns if c.startswith("gt_")]].to_numpy(np.float32)
    # each test image's own ground-truth presence, given as a user prior (one row per image, in split
    # order), is exactly the gt / gt_hard variants
    for hard, variant in ((False, "gt"), (True, "gt_hard")):
        out = evaluate(extended_run, split="test", prior=gt, hard=hard, progress=False, prepared=prepared, force=True)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["user_prior"]["hard"] is hard
        assert metrics["user_prior"]["summary"] == metrics["variants"][variant]
        assert np.array_equal(np.load(out / "confusion_user.npy"), np.load(out / f"confusion_{variant}.npy"))
    # one prior for every image, from the command line's syntax: hard "-dress" leaves no dress pixel
    out = evaluate(extended_run, split="test", prior="-dress", hard=True, progress=False, prepared=prepared, force=True)
    user = np.load(out / "confusion_user.npy")
    assert user[:, CLASSES.index("dress")].sum() == 0 and user.sum() == np.load(out / "confusion_plain.npy").sum()
    with pytest.raises(ValueError, match="rows for"):
        evaluate(extended_run, split="test", prior=gt[:2], progress=False, prepared=prepared, force=True)


def test_two_processes_train_the_single_process_run(profile, prepared, extended_run, tiny_root):
    """torchrun, 2 processes on gloo, the global batch of 8 split 4 + 4: the run folder of a single-process run
    (same id, same files), the same schedule, and close scores. Not equal: each rank's BatchNorm normalises its 4
    images with their own statistics (torch has no CPU SyncBatchNorm), rank 1 draws its own augmentations and
    dropout, and the weighted seg and box losses are normalised per rank before DDP averages the gradients."""
    ddp = profile.replace({"runs_dir": str(tiny_root / "runs_ddp")})
    path = write_profile(ddp.to_dict(), tiny_root / "ddp.yaml")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *_cli(path, "extended_unet")[1:]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    run_dir = next(Path(ddp.runs_dir).glob("*/extended_unet-*"))
    assert run_dir.name == extended_run.name and done.stdout.count(str(run_dir)) == 1  # said once, by rank 0
    # the training's own files: other tests evaluate the shared single-process run, which adds evaluation/ to it
    def trained_files(run):
        return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.relative_to(run).parts[0] != "evaluation")
    assert trained_files(run_dir) == trained_files(extended_run) and "history.csv" in trained_files(run_dir)
    ours_params, plain_params = runs.read_json(run_dir / "params.json"), runs.read_json(extended_run / "params.json")
    for params in (ours_params, plain_params):
        params["profile_full"].pop("runs_dir")  # the one difference: this test's runs go elsewhere
    assert ours_params == plain_params
    assert runs.read_json(run_dir / "provenance.json")["processes"] == {"world_size": 2, "backend": "gloo",
                                                                       "batch_per_process": 4}
    history, plain = pd.read_csv(run_dir / "history.csv"), pd.read_csv(extended_run / "history.csv")
    assert list(history.columns) == list(plain.columns)
    # the paper's schedule: as many optimizer steps an epoch as one process makes, so the same one-cycle lr
    pd.testing.assert_frame_equal(history[["phase", "epoch", "global_epoch", "lr"]],
                                  plain[["phase", "epoch", "global_epoch", "lr"]], check_exact=True)
    # close, by as much as a change of seed moves a run this short: each epoch's total loss within 10 % (train:
    # the mean over both ranks' slices), every term within 15 % of that total, the valid scores within 3 points
    for part in ("train", "valid"):
        total = plain[f"{part}_total"]
        np.testing.assert_allclose(history[f"{part}_total"], total, rtol=0.10, err_msg=part)
        for col in [c for c in plain.columns if c.startswith(f"{part}_")]:
            assert ((history[col] - plain[col]).abs() <= 0.15 * total).all(), (col, history[col], plain[col])
    ours = runs.read_json(run_dir / "metrics.json")["valid"]
    theirs = runs.read_json(extended_run / "metrics.json")["valid"]
    for key in ("pooled_overall", "mean_overall", "pooled_excl_bg", "mask"):
        assert abs(ours[key] - theirs[key]) < 3.0, (key, ours[key], theirs[key])


def test_speed_levers_are_profile_keys_that_train_the_same_model(profile, prepared, tiny_root):
    """``train.channels_last`` trains the same model up to the convolutions' summation order (a CPU has no
    mixed precision: ``amp_dtype`` is checked by what it puts in the Learner, and its GPU speed by the bench)."""
    from fastai.callback.fp16 import AMPMode

    from clothparse.profiles import ProfileError
    from clothparse.training.callbacks import TupleMixedPrecision
    from clothparse.training.train import build_learner, resolve_amp_dtype

    short = {"train.epochs_frozen": 0, "train.epochs_unfrozen": 1}
    plain = train(profile.replace({**short, "runs_dir": str(tiny_root / "runs_cl")}), "unet", prepared=prepared,
                  progress=False)
    cl = train(profile.replace({**short, "train.channels_last": True, "runs_dir": str(tiny_root / "runs_cl")}),
               "unet", prepared=prepared, progress=False)
    assert cl != plain and runs.read_json(cl / "params.json")["train"]["channels_last"] is True
    a, b = pd.read_csv(plain / "history.csv"), pd.read_csv(cl / "history.csv")
    # another summation order grows through an epoch of training: 0.26 % apart on AVX-512 kernels (measured)
    assert np.allclose(a["train_total"], b["train_total"], rtol=1e-2)
    assert np.allclose(a["valid_total"], b["valid_total"], rtol=1e-2)
    assert resolve_amp_dtype("auto", "cpu") == "bf16" and resolve_amp_dtype("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="amp_dtype: bf16"):
        resolve_amp_dtype("fp16", "cpu")
    from clothparse.training.train import make_dataloaders

    dls, loss = make_dataloaders(prepared, batch_size=8), torch.nn.CrossEntropyLoss()
    # on a CPU, mixed precision computes the convolutions in bf16 (fastai's own callback stays in fp32 there)
    from clothparse.models import build_model
    from clothparse.models.losses import CompoundLoss

    net = build_model("unet", encoder_name=profile.encoder_name, input_size=tuple(profile.size))
    seen = []
    net.head.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    build_learner(net, dls, CompoundLoss(), lr=1e-3, wd=0.0, amp=True, amp_dtype="bf16").fit(1)
    assert seen and set(seen) == {torch.bfloat16}
    with pytest.raises(ValueError, match="bf16 only"):
        build_learner(net, dls, CompoundLoss(), lr=1e-3, wd=0.0, amp=True, amp_dtype="fp16").fit(1)
    learn = build_learner(torch.nn.Conv2d(3, 9, 1), dls, loss, lr=1e-3, wd=0.0, amp=True, amp_dtype="bf16")
    amp = [cb for cb in learn.cbs if isinstance(cb, TupleMixedPrecision)]
    assert len(amp) == 1 and amp[0].amp_mode == AMPMode.BF16
    with pytest.raises(ValueError, match="amp_dtype must be"):
        build_learner(torch.nn.Conv2d(3, 9, 1), dls, loss, lr=1e-3, wd=0.0, amp=True, amp_dtype="half")
    with pytest.raises(ProfileError, match="train.amp_dtype"):
        profile.replace({"train.amp_dtype": "half"})
