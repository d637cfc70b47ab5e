"""The one device rule: ``auto`` is the GPU where there is one and the CPU otherwise; ``cuda`` without CUDA is an
error that says so (never a silent fall-back); anything else is refused with the valid names."""
import pytest
import torch

from clothparse.devices import DEVICES, resolve_device


@pytest.mark.parametrize("requested", ["auto", None, ""])
def test_auto_is_the_gpu_where_there_is_one(requested):
    assert resolve_device(requested) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_auto_without_cuda_is_the_cpu_and_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device() == resolve_device("auto") == resolve_device("cpu") == "cpu"
    for asked in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match=f"device '{asked}' requested but CUDA is not available.*'cpu' or "
                                               "'auto'"):
            resolve_device(asked)


def test_cuda_devices_are_kept_as_asked_where_there_is_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:3") == "cuda:3"
    assert resolve_device("cpu") == "cpu"                  # the CPU stays available beside a GPU


@pytest.mark.parametrize("bad", ["tpu", "CPU", "gpu", "mps", "cuda3"])
def test_unknown_devices_are_refused_with_the_known_ones(bad):
    with pytest.raises(ValueError, match=f"unknown device '{bad}'; use one of auto, cpu, cuda \\(or cuda:N\\)"):
        resolve_device(bad)
    assert DEVICES == ("auto", "cpu", "cuda")
