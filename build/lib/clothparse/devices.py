"""The one device rule of the package: train, evaluate, refinement's detector, the parser and the book.

``auto`` takes the GPU where there is one and the CPU otherwise; asking for ``cuda`` on a machine without
CUDA is an error that says so, never a silent fall-back to the CPU.
"""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str | None = "auto") -> str:
    """``"cpu"`` or a CUDA device name for ``requested`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``)."""
    import torch

    requested = str(requested or "auto")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} requested but CUDA is not available on this machine; "
                               "use device 'cpu' or 'auto' (profile key `device`, or --device)")
        return requested
    raise ValueError(f"unknown device {requested!r}; use one of {', '.join(DEVICES)} (or cuda:N)")
