"""One loader for every weight file: what it reads back, what it refuses, and how the CLI says so."""
from __future__ import annotations

import ast
import os
import pickle
import re
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import clothparse
from clothparse import cli
from clothparse.weights import (
    MissingWeightsError,
    WeightsError,
    load_state_dict,
    read_metadata,
    save_state_dict,
    torch_load,
    weights_path,
)

REFUSAL = "refused to load: it contains pickled Python objects, which are not loaded from untrusted files"


class Payload:
    """A class a weights-only unpickler must never build (its name is in the refusal)."""


def state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "conv.bias": torch.randn(4, generator=g),
            "bn.num_batches_tracked": torch.tensor(7), "half": torch.randn(5, generator=g).half(),
            "strided": torch.randn(6, 4, generator=g).t()}


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


# --- reading back ------------------------------------------------------------------------------------------
def test_safetensors_round_trip_exactly_with_metadata(tmp_path):
    path = save_state_dict(state(), tmp_path / "model.safetensors", metadata={"model": "unet", "input_size": "8x8"})
    assert_same(load_state_dict(path), state())
    assert read_metadata(path) == {"model": "unet", "input_size": "8x8"}
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left behind


def test_a_torch_state_dict_round_trips_exactly(tmp_path):
    torch.save(state(), tmp_path / "encoder.pth")
    assert_same(load_state_dict(tmp_path / "encoder.pth"), state())


def test_a_saved_file_is_readable_by_others_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    old_umask = os.umask(0o077)
    try:
        save_state_dict(state(), path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert_same(load_state_dict(path), state())


# --- refusals ------------------------------------------------------------------------------------------------
def test_pickled_objects_are_refused_naming_the_file_and_the_object(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "extra": Payload()}, evil)
    for load in (load_state_dict, torch_load):
        with pytest.raises(WeightsError) as refused:
            load(evil)
        message = str(refused.value)
        assert message.startswith(f"{evil}: {REFUSAL} (weights_only=True)"), message
        assert "Payload" in message and "weights_only=False" not in message and "False" not in message
        assert refused.value.path == evil and refused.value.reason in message


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_and_random_files_are_errors_naming_them(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    save_state_dict(state(), good) if suffix == ".safetensors" else torch.save(state(), good)
    truncated, noise = tmp_path / f"truncated{suffix}", tmp_path / f"noise{suffix}"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    noise.write_bytes(bytes(torch.randint(0, 256, (300,), generator=torch.Generator().manual_seed(1)).tolist()))
    for path in (truncated, noise):
        with pytest.raises(WeightsError, match=re.escape(f"{path}: not a readable ")) as raised:
            load_state_dict(path)
        assert "weights_only=False" not in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_file_is_both_a_weights_error_and_file_not_found(tmp_path):
    for path in (tmp_path / "none.pt", tmp_path / "none.safetensors"):
        with pytest.raises(MissingWeightsError, match=re.escape(f"{path}: no such file")) as raised:
            load_state_dict(path)
        assert isinstance(raised.value, FileNotFoundError) and isinstance(raised.value, ValueError)
        again = pickle.loads(pickle.dumps(raised.value))  # an error that crosses processes keeps its parts
        assert type(again) is MissingWeightsError and str(again) == str(raised.value) and again.path == path
    with pytest.raises(FileNotFoundError, match="nope.pth: encoder weights file does not exist"):
        weights_path(tmp_path / "nope.pth")
    assert weights_path(None) is None and weights_path("imagenet") is None


@pytest.mark.parametrize(("payload", "says"), [([torch.zeros(2)], "it is list"), ({}, "it is empty"),
                                               ({"w": torch.zeros(2), "n": 3}, "'n' is int, not a tensor"),
                                               ({"model": {"w": torch.zeros(2)}}, "'model' is dict, not a tensor")])
def test_what_is_not_a_flat_state_dict_is_refused(tmp_path, payload, says):
    path = tmp_path / "blob.pt"
    torch.save(payload, path)
    with pytest.raises(WeightsError, match=re.escape(f"{path}: not a state dict")) as raised:
        load_state_dict(path)
    assert says in str(raised.value)
    assert type(torch_load(path)) is type(payload)  # a blob (a checkpoint) need not be flat


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_caught_when_asked(tmp_path, bad):
    weights = state()
    weights["conv.bias"][2] = bad
    path = save_state_dict(weights, tmp_path / "model.safetensors")
    assert not torch.isfinite(load_state_dict(path)["conv.bias"]).all()  # not asked: read as it is
    with pytest.raises(WeightsError, match=re.escape(f"{path}: tensor 'conv.bias' holds NaN or infinite values")):
        load_state_dict(path, check_finite=True)


# --- the CLI -------------------------------------------------------------------------------------------------
def run_error(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, command: str, *says: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"clothparse {command}: error: "), err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    for text in says:
        assert text in err, f"{text!r} not in {err!r}"


def test_the_cli_names_a_corrupted_run_weights_file(tmp_path, capsys):
    from test_export import write_run

    run = write_run(tmp_path / "runs" / "unet-0", model="unet", size=(32, 32))
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, err = run_error(capsys, "export", run, "--out", tmp_path / "m.pt")
    assert_one_line(code, err, "export", f"{weights}: not a readable safetensors file", "retrain the run")
    assert not (tmp_path / "m.pt").exists()


def test_the_cli_names_a_package_with_nan_weights(tmp_path, capsys):
    from PIL import Image
    from test_package import write_smp_run

    from clothparse.parser.package import export_package

    package = export_package(write_smp_run(tmp_path / "smp_unet-0"), tmp_path / "pkg")
    weights = package / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) == 0o644
    tensors, metadata = load_state_dict(weights), read_metadata(weights)
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, str(weights), metadata=metadata)
    Image.new("RGB", (30, 40)).save(tmp_path / "photo.png")
    code, err = run_error(capsys, "parse", tmp_path / "photo.png", "--model", package, "--out", tmp_path / "out",
                          "--no-progress")
    assert_one_line(code, err, "parse", f"{weights}: tensor {name!r} holds NaN or infinite values")


# --- the one loader ------------------------------------------------------------------------------------------
def test_no_other_module_loads_weight_files():
    """torch.load and safetensors' readers and writers are called from clothparse/weights.py only."""
    root = Path(clothparse.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "weights.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("safetensors"):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} imports from {node.module}")
            elif isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if called == "torch.load" or called.split(".")[-1] in ("load_file", "safe_open", "save_file"):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno} calls {called}")
    assert offenders == []


# --- the other readers: checkpoints and the detector ----------------------------------------------------------
def test_a_checkpoint_round_trips_and_a_damaged_one_says_what_to_do(tmp_path):
    from types import SimpleNamespace

    from clothparse.runs import RunDir
    from clothparse.training.checkpoint import apply_checkpoint, checkpoint_state, read_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    run = RunDir(tmp_path / "run")
    save_checkpoint(SimpleNamespace(model=model, opt=opt), run, phase=2, epochs_done=1, history=[{"epoch": 0}])
    assert checkpoint_state(run) == ({"phase": 2, "epochs_done": 1, "history": [{"epoch": 0}]}, "")
    fresh = SimpleNamespace(model=torch.nn.Linear(3, 2), opt=None)
    fresh.opt = torch.optim.Adam(fresh.model.parameters())
    apply_checkpoint(fresh, read_checkpoint(run))
    assert_same(fresh.model.state_dict(), model.state_dict())
    assert torch.equal(fresh.opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

    run.checkpoint_path.write_bytes(run.checkpoint_path.read_bytes()[:50])
    with pytest.raises(WeightsError, match=re.escape(f"{run.checkpoint_path}: not a readable torch file")
                       + ".*delete it to train the run from the start"):
        read_checkpoint(run)
    torch.save({"model": {"w": torch.zeros(1)}}, run.checkpoint_path)
    with pytest.raises(WeightsError, match="not a clothparse checkpoint"):
        read_checkpoint(run)


def test_the_detector_refuses_a_pickled_weights_file(tmp_path):
    from clothparse.refine.detectors import MaskRCNNDetector

    evil = tmp_path / "maskrcnn.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload()}, evil)
    with pytest.raises(WeightsError, match=re.escape(f"{evil}: {REFUSAL}")):
        MaskRCNNDetector(weights=evil, device="cpu")
    with pytest.raises(MissingWeightsError, match="Mask R-CNN weights file not found"):
        MaskRCNNDetector(weights=tmp_path / "none.pth", device="cpu")


def test_mismatch_names_missing_unexpected_and_misshaped_tensors_in_one_line():
    from clothparse.weights import mismatch

    target = {"a": torch.zeros(2), "b": torch.zeros(3), "c": torch.zeros(1), "d": torch.zeros(1),
              "e": torch.zeros(1), "f": torch.zeros(1)}
    assert mismatch(dict(target), target) == ""
    state = {"b": torch.zeros(4), "x": torch.zeros(1)}
    assert mismatch(state, target) == ("5 missing (a, c, d … (+2)); 1 unexpected (x); "
                                       "1 of another shape (b: file (4,) vs model (3,))")
