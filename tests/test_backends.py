"""The parser's network behind one call: a torch module (eval mode, no autograd, float32 answers, the prior only
where one is given), an onnxruntime session of an ``.onnx`` graph (the same answers; graphs that are not a
clothparse export refused naming the file) and the mirror average of either (the mean of the two softmaxes)."""
import math
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from clothparse.categories import NUM_CLASSES
from clothparse.parser.backends import MirrorAveraged, Network, OnnxBackend, TorchBackend, mirror_average

SIZE = (8, 6)


class Tiny(nn.Module):
    """A 1×1 convolution to the 9 classes and, optionally, 8 class logits that see the prior."""

    def __init__(self, classes: bool = True, n_out: int = NUM_CLASSES, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, n_out, 1)
        self.classes = nn.Linear(3, 8) if classes else None
        self.priors = []

    def forward(self, x, prior=None):
        self.priors.append(prior)
        seg = self.conv(x)
        if self.classes is None:
            return (seg,)
        cls = self.classes(x.mean((2, 3)))
        return seg, cls + (0 if prior is None else torch.nan_to_num(prior))


def _x(n=2, seed=1):
    return torch.randn(n, 3, *SIZE, generator=torch.Generator().manual_seed(seed))


# --- mirror averaging ------------------------------------------------------------------------------------------
def test_mirror_average_is_the_log_of_the_mean_of_the_softmaxes():
    a, b = torch.randn(2, 9, 6, 5), torch.randn(2, 9, 6, 5)
    assert torch.allclose(mirror_average(a, b).softmax(1), (a.softmax(1) + b.flip(-1).softmax(1)) / 2, atol=1e-6)
    assert torch.allclose(mirror_average(a, a.flip(-1)), a.log_softmax(1), atol=1e-6)
    # log-probabilities already: they exponentiate to a distribution without another softmax
    assert torch.allclose(mirror_average(a, b).exp().sum(1), torch.ones(2, 6, 5), atol=1e-6)
    # a half-precision network's logits are averaged in float32
    assert mirror_average(a.half(), b.half()).dtype == torch.float32
    # one pixel by hand: probabilities (0.9, 0.1) and, mirrored, (0.3, 0.7) average to (0.6, 0.4)
    p = torch.log(torch.tensor([0.9, 0.1])).view(1, 2, 1, 1)
    q = torch.log(torch.tensor([0.3, 0.7])).view(1, 2, 1, 1)
    assert torch.allclose(mirror_average(p, q).exp().flatten(), torch.tensor([0.6, 0.4]), atol=1e-6)


class Recording:
    """A backend that answers from a fixed rule and remembers what it was asked."""

    name, takes_prior = "fake", True

    def __init__(self, with_classes=True):
        self.calls, self.with_classes = [], with_classes

    def __call__(self, x, prior=None):
        self.calls.append((x.clone(), prior))
        seg = torch.cat([x, x.roll(1, -1), x ** 2], 1)  # 9 planes, none mirror-symmetric
        return seg, (x.mean((1, 2, 3))[:, None].repeat(1, 8) if self.with_classes else None)


def test_mirror_averaged_asks_the_network_twice_and_averages():
    inner = Recording()
    tta = MirrorAveraged(inner)
    assert tta.name == "fake + mirror" and tta.takes_prior and tta.module is None
    x, prior = _x(), torch.tensor([[1.0] + [math.nan] * 7] * 2)
    seg, cls = tta(x, prior=prior)
    assert len(inner.calls) == 2
    assert torch.equal(inner.calls[0][0], x) and torch.equal(inner.calls[1][0], x.flip(-1))
    assert inner.calls[0][1] is prior and inner.calls[1][1] is prior  # the prior is the photo's: not mirrored
    seg_plain, cls_plain = Recording()(x)
    seg_mirror, cls_mirror = Recording()(x.flip(-1))
    assert torch.allclose(seg, mirror_average(seg_plain, seg_mirror))
    assert torch.allclose(cls, (cls_plain + cls_mirror) / 2)           # class logits: averaged as logits
    assert MirrorAveraged(Recording(with_classes=False))(x)[1] is None


# --- torch ----------------------------------------------------------------------------------------------------
def test_torch_backend_answers_in_float32_in_eval_mode_without_autograd():
    module = Tiny().train()
    backend = TorchBackend(module, "cpu", amp=True)
    assert backend.name == "torch" and backend.takes_prior and backend.module is module
    assert not module.training and backend.amp is False               # fp16 autocast is for CUDA only
    x = _x()
    seg, cls = backend(x)
    assert seg.shape == (2, NUM_CLASSES, *SIZE) and cls.shape == (2, 8)
    assert seg.dtype == cls.dtype == torch.float32 and not seg.requires_grad
    with torch.no_grad():
        assert torch.equal(seg, module.conv(x)) and module.priors[-1] is None  # no prior argument at all
    prior = torch.tensor([[1.0] + [math.nan] * 7] * 2)
    seg_p, cls_p = backend(x, prior=prior)
    assert module.priors[-1] is prior and torch.equal(seg_p, seg)
    assert torch.allclose(cls_p[:, 0], cls[:, 0] + 1) and torch.equal(cls_p[:, 1:], cls[:, 1:])
    # a module without class logits: None
    assert TorchBackend(Tiny(classes=False), "cpu", amp=False)(x)[1] is None


def test_a_network_gives_the_torch_backend_of_its_module():
    net = Network(SIZE, "imagenet", "tiny", module=Tiny())
    backend = net.backend("cpu", amp=False)
    assert isinstance(backend, TorchBackend) and backend.module is net.module


# --- onnxruntime ------------------------------------------------------------------------------------------------
def export_tiny(path, module=None, input_name="image", size=SIZE, dynamic=True):
    """``module`` exported as clothparse's export does it (one input, batch axis free)."""
    module = (module or Tiny()).eval()
    outputs = ["seg", "classes"] if module.classes is not None else ["seg"]
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation, as clothparse's export uses it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (torch.zeros(1, 3, *size),), str(path), input_names=[input_name],
                          output_names=outputs, opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch"} for n in [input_name, *outputs]} if dynamic else None)
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    return export_tiny(tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def test_onnx_backend_answers_like_the_module(onnx_file):
    backend = OnnxBackend(onnx_file, "cpu", input_size=SIZE)
    assert backend.name == "onnxruntime" and not backend.takes_prior and backend.with_classes
    x = _x(3)
    seg, cls = backend(x, prior=torch.zeros(3, 8))                    # the export has no prior input
    with torch.no_grad():
        want_seg, want_cls = Tiny().eval()(x)
    assert seg.dtype == torch.float32 and seg.shape == (3, NUM_CLASSES, *SIZE)
    assert torch.allclose(seg, want_seg, atol=1e-5) and torch.allclose(cls, want_cls, atol=1e-5)
    assert isinstance(Network(SIZE, "imagenet", "tiny", onnx_path=onnx_file).backend("cpu", amp=False), OnnxBackend)


def test_onnx_graphs_that_are_not_a_clothparse_export_are_refused(onnx_file, tmp_path):
    with pytest.raises(ValueError, match=r"tiny\.onnx: the graph takes 8×6 images but its description says 16×16"):
        OnnxBackend(onnx_file, "cpu", input_size=(16, 16))
    wrong_name = export_tiny(tmp_path / "named.onnx", input_name="input")
    with pytest.raises(ValueError, match=r"named\.onnx: expected one input 'image' \(clothparse export\), got "
                                         r"\['input'\]"):
        OnnxBackend(wrong_name, "cpu")
    three = export_tiny(tmp_path / "three.onnx", Tiny(n_out=3))
    with pytest.raises(ValueError, match=f"three.onnx: its segmentation has 3 classes, this clothparse {NUM_CLASSES}"):
        OnnxBackend(three, "cpu")
    seg_only = OnnxBackend(export_tiny(tmp_path / "seg.onnx", Tiny(classes=False)), "cpu")
    assert not seg_only.with_classes and seg_only(_x())[1] is None
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ValueError, match=r"junk\.onnx: onnxruntime cannot load it"):
        OnnxBackend(tmp_path / "junk.onnx", "cpu")


def test_onnx_without_its_package_or_its_cuda_provider_says_what_to_install(onnx_file, monkeypatch):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ValueError, match=r"no CUDA provider \(pip install onnxruntime-gpu\); parse it with "
                                             "--device cpu"):
            OnnxBackend(onnx_file, "cuda")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"needs onnxruntime: pip install 'clothparse\[onnx\]'"):
        OnnxBackend(onnx_file, "cpu")


def test_the_onnx_session_uses_torchs_thread_count(onnx_file):
    backend = OnnxBackend(onnx_file, "cpu")
    assert backend.session.get_session_options().intra_op_num_threads == torch.get_num_threads()
    assert np.asarray(backend(_x(1))[0]).shape == (1, NUM_CLASSES, *SIZE)
