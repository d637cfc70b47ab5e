"""Export a trained run for deployment, and check the export against the eager model.

The exported module is the run's *deployable* model (:func:`clothparse.models.deployable`: a ``branches`` model
without its branches) in eval mode, at the run's fixed input size, on the CPU, in float32:

- input ``image``: B×3×H×W float, ImageNet-normalised (``(x/255 - mean) / std``, written to the sidecar);
- outputs: ``seg`` (B×9×H×W logits) and, where the deployed model has a ClassBranch, ``classes`` (B×8 logits).
  No prior input: an export answers without injected knowledge (``apply_hard`` on ``seg`` still works).

Formats, chosen by the file suffix:

- ``.pt`` / ``.ts`` — TorchScript (``torch.jit.trace``): runs with libtorch or ``torch.jit.load``, no clothparse;
- ``.onnx`` — ONNX (opset 17 by default); needs the ``onnx`` package, and ``onnxruntime`` to verify.

Next to the file, ``<file>.json`` records the run, the input size, the normalisation, classes and outputs; with
it, ``Parser.from_pretrained("model.onnx")`` / ``clothparse parse --model model.onnx`` parse through onnxruntime
(:mod:`clothparse.parser.backends`). A folder to hand on — weights, config and model card in the Hugging Face Hub
layout,
optionally with the ONNX file — is :mod:`clothparse.parser.package` (``clothparse export RUN --package DIR [--onnx]``).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from clothparse.categories import CLASSES, CLOTHING
from clothparse.images import stats_of
from clothparse.models import deployable
from clothparse.runs import RunDir

__all__ = ["ExportMismatchError", "export", "export_torchscript", "export_onnx", "verify_export",
           "load_export"]

FORMATS = {".pt": "torchscript", ".ts": "torchscript", ".onnx": "onnx"}


class ExportMismatchError(AssertionError):
    """The exported model's outputs differ from the eager model's by more than the tolerance."""


class _Deployed(nn.Module):
    """The deployable model with a plain tuple output (exporters want tensors, not a NamedTuple with Nones)."""

    def __init__(self, model: nn.Module, with_classes: bool):
        super().__init__()
        self.model, self.with_classes = model, with_classes

    def forward(self, image: torch.Tensor):
        out = self.model(image)
        return (out[0], out[1]) if self.with_classes else (out[0],)


def _deployed(run_dir) -> tuple[_Deployed, dict, tuple[int, int]]:
    model, params = RunDir(run_dir).load_model("cpu")
    model = deployable(model).eval()
    size = tuple(int(v) for v in params["size"])
    with torch.inference_mode():
        probe = model(torch.zeros(1, 3, *size))
    wrapped = _Deployed(model, with_classes=len(probe) > 1 and probe[1] is not None).eval()
    return wrapped, params, size


def _example(size: tuple[int, int], batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def _sidecar(path: Path, run_dir, params: dict, size, fmt: str, with_classes: bool) -> None:
    mean, std = stats_of(params.get("normalisation", "imagenet"))
    info = {"run": str(Path(run_dir).resolve()), "model": params["model"], "format": fmt,
            "input": {"name": "image", "shape": ["B", 3, size[0], size[1]], "dtype": "float32",
                      "normalisation": params.get("normalisation", "imagenet"),
                      "mean": mean, "std": std, "scale": "x/255 first"},
            "outputs": {"seg": {"shape": ["B", len(CLASSES), size[0], size[1]], "classes": list(CLASSES)}}}
    if with_classes:
        info["outputs"]["classes"] = {"shape": ["B", len(CLOTHING)], "classes": list(CLOTHING), "kind": "logits"}
    Path(f"{path}.json").write_text(json.dumps(info, indent=1))


def _format(path: Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown export suffix; use one of {sorted(FORMATS)}")
    return fmt


def export_torchscript(run_dir, path) -> Path:
    """TorchScript (trace) of the run's deployable model → ``path``."""
    wrapped, params, size = _deployed(run_dir)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the trace fixes the model's shape checks to the run's input size, which is what is exported; torch
        # announces TorchScript's deprecation (torch.export is its successor) on every call
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(wrapped, _example(size), check_trace=False)
        torch.jit.save(traced, str(path))
    _sidecar(path, run_dir, params, size, "torchscript", wrapped.with_classes)
    return path


def export_onnx(run_dir, path, opset: int = 17) -> Path:
    """ONNX of the run's deployable model → ``path`` (batch dimension dynamic); needs the ``onnx`` package."""
    try:
        import onnx  # noqa: F401
    except ImportError as err:
        raise RuntimeError("ONNX export needs the 'onnx' package (and 'onnxruntime' to verify); it is not "
                           "installed — pip install 'clothparse[onnx]', or export TorchScript (.pt) instead") from err
    wrapped, params, size = _deployed(run_dir)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    outputs = ["seg", "classes"] if wrapped.with_classes else ["seg"]
    torch.onnx.export(wrapped, (_example(size),), str(path), input_names=["image"], output_names=outputs,
                      opset_version=opset, dynamic_axes={n: {0: "batch"} for n in ["image", *outputs]},
                      dynamo=False)
    _sidecar(path, run_dir, params, size, "onnx", wrapped.with_classes)
    return path


def export(run_dir, path, opset: int = 17) -> Path:
    """Export in the format of ``path``'s suffix (see the module docstring)."""
    fmt = _format(path)
    if fmt == "torchscript":
        return export_torchscript(run_dir, path)
    return export_onnx(run_dir, path, opset=opset)


def load_export(path):
    """A callable ``f(image: torch.Tensor) -> tuple[torch.Tensor, ...]`` for an exported file."""
    fmt = _format(path)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        return lambda x: tuple(module(x))
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise RuntimeError("verifying an ONNX export needs the 'onnxruntime' package: "
                           "pip install 'clothparse[onnx]'") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: tuple(torch.from_numpy(o) for o in session.run(None, {"image": x.numpy()}))


def verify_export(run_dir, path, atol: float = 1e-4, batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between the export's and the eager model's outputs on random input.

    Raises :class:`ExportMismatchError` when it exceeds ``atol`` or the outputs' shapes differ."""
    wrapped, _, size = _deployed(run_dir)
    x = _example(size, batch=batch, seed=seed + 1)
    with torch.inference_mode():
        expected = wrapped(x)
        got = load_export(path)(x.clone())
    if len(got) != len(expected):
        raise ExportMismatchError(f"{path}: {len(got)} outputs, the eager model has {len(expected)}")
    diff = 0.0
    for name, e, g in zip(("seg", "classes"), expected, got):
        if tuple(g.shape) != tuple(e.shape):
            raise ExportMismatchError(f"{path}: output {name} has shape {tuple(g.shape)}, eager {tuple(e.shape)}")
        diff = max(diff, float((g.float() - e.float()).abs().max()))
    if not diff <= atol:
        raise ExportMismatchError(f"{path}: outputs differ from the eager model by {diff:.3g} > atol {atol:g}")
    return diff
