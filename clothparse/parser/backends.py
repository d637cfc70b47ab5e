"""The network inside a :class:`clothparse.parser.parse.Parser`: a torch module or an onnxruntime session, behind
one call.

A backend takes the normalised batch (B×3×H×W float32 at the model's input size, on the parser's device) and an
optional prior (B×8) and returns ``(seg, classes)``: B×9×H×W segmentation logits and B×8 ClassBranch logits or
``None``, both float32 torch tensors. Everything around it — reading, resizing, the mask at full size, boxes,
colours, the hard prior — is the parser's and the same for both.

- :class:`TorchBackend`: the deployable model (:func:`clothparse.models.deployable`) in eval mode; fp16
  autocast on CUDA; a prior enters the ClassBranch where the model has one.
- :class:`OnnxBackend`: an exported ``.onnx`` file (:mod:`clothparse.parser.export`) in onnxruntime, on the CPU (CUDA
  where onnxruntime has its provider). The export has no prior input: a prior acts only with ``hard=True``.
  Its input size is fixed by the export (the run's); it uses as many threads as torch does, so the two
  backends are compared on equal terms.
- :class:`MirrorAveraged`: either of them run on the batch and on its mirror image, the two answers averaged
  (test-time augmentation: ``Parser(tta=True)``, ``clothparse parse --tta``; twice the network's time).

:class:`Network` is what was loaded (:func:`clothparse.parser.package.load_network`) before a device is chosen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clothparse.categories import NUM_CLASSES
from clothparse.models import deployable

__all__ = ["Network", "TorchBackend", "OnnxBackend", "MirrorAveraged", "mirror_average"]


class TorchBackend:
    """A torch module as the parser's network."""

    name = "torch"
    takes_prior = True

    def __init__(self, module: torch.nn.Module, device: str, amp: bool):

        self.module = deployable(module).to(device).eval()
        self.device, self.amp = device, bool(amp) and device.startswith("cuda")

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, prior: torch.Tensor | None = None):
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            out = self.module(x, prior=prior) if prior is not None else self.module(x)
        cls = out[1].float() if len(out) > 1 and out[1] is not None else None
        return out[0].float(), cls


class OnnxBackend:
    """An ``.onnx`` export in an onnxruntime session as the parser's network."""

    name = "onnxruntime"
    takes_prior = False

    def __init__(self, path: str | Path, device: str, input_size: tuple[int, int] | None = None):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError("running an .onnx model needs onnxruntime: pip install 'clothparse[onnx]'",
                              name="onnxruntime") from err
        self.path, self.device = Path(path), device
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(f"{path}: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu); "
                                 "parse it with --device cpu")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as err:  # onnxruntime's errors (bad protobuf, bad graph) do not always name the file
            raise ValueError(f"{path}: onnxruntime cannot load it ({err})") from err
        self._check_io(input_size)

    def _check_io(self, input_size) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != "image":
            raise ValueError(f"{self.path}: expected one input 'image' (clothparse export), got "
                             f"{[i.name for i in inputs]}")
        shape = inputs[0].shape
        if input_size is not None and [d for d in shape[2:]] != [int(v) for v in input_size]:
            raise ValueError(f"{self.path}: the graph takes {shape[2]}×{shape[3]} images but its description "
                             f"says {input_size[0]}×{input_size[1]}")
        if outputs[0].shape[1] != NUM_CLASSES:
            raise ValueError(f"{self.path}: its segmentation has {outputs[0].shape[1]} classes, this clothparse "
                             f"{NUM_CLASSES}")
        self.with_classes = len(outputs) > 1

    def __call__(self, x: torch.Tensor, prior: torch.Tensor | None = None):
        outs = self.session.run(None, {"image": x.detach().float().cpu().numpy()})
        seg = torch.from_numpy(outs[0]).to(x.device)
        cls = torch.from_numpy(outs[1]).to(x.device) if self.with_classes else None
        return seg, cls


def mirror_average(seg: torch.Tensor, seg_of_mirror: torch.Tensor) -> torch.Tensor:
    """Log of the mean class probabilities of a batch's logits and of its mirror image's (flipped back): logits
    again, so argmax, softmax and the hard prior treat them like the network's own."""
    both = torch.stack([seg.float().log_softmax(1), seg_of_mirror.float().flip(-1).log_softmax(1)])
    return torch.logsumexp(both, dim=0) - math.log(2)


class MirrorAveraged:
    """A backend answered twice, on the batch and on its left-right mirror image; the segmentations are averaged
    as probabilities (:func:`mirror_average`), the ClassBranch logits as logits (what is in a photo does not
    change with a mirror)."""

    def __init__(self, backend):
        self.inner = backend
        self.name, self.takes_prior = f"{backend.name} + mirror", backend.takes_prior

    @property
    def module(self):
        return getattr(self.inner, "module", None)

    def __call__(self, x: torch.Tensor, prior: torch.Tensor | None = None):
        seg, cls = self.inner(x, prior=prior)
        seg_m, cls_m = self.inner(x.flip(-1), prior=prior)
        return mirror_average(seg, seg_m), None if cls is None else (cls + cls_m) / 2


@dataclass
class Network:
    """A loaded network before it is placed on a device: a torch ``module`` or an ``onnx_path``, the input size
    it answers at, the normalisation it was trained with, its model name and where it came from."""

    input_size: tuple[int, int]
    normalisation: Any
    model_name: str
    source: str | None = None
    module: torch.nn.Module | None = None
    onnx_path: Path | None = None

    def backend(self, device: str, amp: bool):
        if self.onnx_path is not None:
            return OnnxBackend(self.onnx_path, device, self.input_size)
        return TorchBackend(self.module, device, amp)
