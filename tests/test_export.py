"""The deployment export: a TorchScript file answers like the eager model, its sidecar says how to feed it,
a different model is caught by the verification, and ONNX without its package says what is missing."""
import json
import sys

import pytest
import torch
from safetensors.torch import save_file

from clothparse.categories import CLASSES, CLOTHING
from clothparse.models import build_model
from clothparse.parser.export import ExportMismatchError, export, export_onnx, load_export, verify_export
from clothparse.runs import RunDir, write_json


def write_run(path, model="extended_unet", size=(64, 64), seed=0, complete=True, profile=None):
    """A run folder as training leaves it (params.json, model.safetensors, COMPLETE), with untrained weights:
    what is exported, loaded or parsed does not depend on how good the weights are."""
    torch.manual_seed(seed)
    net = build_model(model, input_size=tuple(size), encoder_weights=None)
    path.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path / "model.safetensors"))
    params = {"model": model, "variant": "refined", "size": list(size),
              "classes": list(CLASSES), "normalisation": "imagenet"}
    if profile is not None:
        params["profile_full"] = profile
    write_json(path / "params.json", params)
    if complete:
        RunDir(path).mark_complete()
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("export") / "extended_unet-abc")


def test_torchscript_export_matches_the_eager_model(tmp_path, run_dir):
    path = export(run_dir, tmp_path / "model.pt")
    assert path == tmp_path / "model.pt" and path.is_file()
    assert verify_export(run_dir, path, atol=1e-4) < 1e-4
    side = json.loads((tmp_path / "model.pt.json").read_text())
    assert side["format"] == "torchscript" and side["model"] == "extended_unet"
    assert side["input"]["shape"][2:] == [64, 64] and side["input"]["normalisation"] == "imagenet"
    assert side["outputs"]["seg"]["classes"] == list(CLASSES)
    assert side["outputs"]["classes"]["classes"] == list(CLOTHING)  # the deployed model keeps its ClassBranch
    module = torch.jit.load(str(path))
    seg, cls = module(torch.zeros(3, 3, 64, 64))  # the batch size is free
    assert seg.shape == (3, len(CLASSES), 64, 64) and cls.shape == (3, len(CLOTHING))


def test_a_model_without_classbranch_exports_one_output(tmp_path):
    run = write_run(tmp_path / "unet-abc", model="unet")
    path = export(run, tmp_path / "unet.ts")
    side = json.loads((tmp_path / "unet.ts.json").read_text())
    assert set(side["outputs"]) == {"seg"}
    assert len(load_export(path)(torch.zeros(1, 3, 64, 64))) == 1
    assert verify_export(run, path) < 1e-4


def test_verification_catches_another_model(tmp_path, run_dir):
    other = write_run(tmp_path / "extended_unet-other", seed=1)  # same architecture, other weights
    path = export(other, tmp_path / "other.pt")
    with pytest.raises(ExportMismatchError, match="differ from the eager model"):
        verify_export(run_dir, path)


def test_unknown_suffix_and_missing_onnx(tmp_path, run_dir, monkeypatch):
    with pytest.raises(ValueError, match="unknown export suffix"):
        export(run_dir, tmp_path / "model.zip")
    assert not (tmp_path / "model.zip").exists()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as where the [onnx] extra is not installed
    with pytest.raises(RuntimeError, match=r"needs the 'onnx' package.*pip install 'clothparse\[onnx\]'"):
        export_onnx(run_dir, tmp_path / "model.onnx")


def test_runs_export_and_parser_read_the_one_size_key(tmp_path):
    """params.json holds the input size once (``size``); the loader, the exporter and the parser all read it."""
    from clothparse.parser.export import _deployed
    from clothparse.parser.package import _run_network

    path = write_run(tmp_path / "unet-size", model="unet", size=(64, 32))
    params = RunDir(path).params()
    assert params["size"] == [64, 32] and "input_size" not in params
    model, _ = RunDir(path).load_model("cpu")
    assert tuple(model.input_size) == (64, 32)
    assert _deployed(path)[2] == (64, 32)
    assert _run_network(path, None).input_size == (64, 32)
