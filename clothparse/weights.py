"""Every weight file clothparse reads or writes goes through here: run models, packages, encoder state dicts,
the detector's weights and the resume checkpoints.

A ``.safetensors`` file is read by safetensors, anything else by ``torch.load(weights_only=True)``: a file is never
allowed to run code, and a refusal never suggests ``weights_only=False``. Whatever goes wrong — a missing, truncated
or corrupt file, pickled Python objects, something that is not a state dict, NaN weights where asked — is one
:class:`WeightsError` whose message names the file and says why, so the CLI prints it as it is.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["WeightsError", "MissingWeightsError", "pickle_refusal", "weights_path", "load_state_dict",
           "torch_load", "as_state_dict", "read_metadata", "mismatch", "save_state_dict"]

SAFETENSORS_SUFFIX = ".safetensors"
#: a saved model is meant to be shared (a package, a run folder others read)
FILE_MODE = 0o644


class WeightsError(ValueError):
    """A weight file that cannot be used; ``str()`` is ``"<path>: <reason>"``."""

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # picklable (an error crossing processes) although __init__ takes two arguments
        return type(self), (self.path, self.reason)

    def with_hint(self, hint: str) -> WeightsError:
        """The same error with ``; <hint>`` (what the caller's user can do) appended to the reason."""
        return type(self)(self.path, f"{self.reason}; {hint}")


class MissingWeightsError(WeightsError, FileNotFoundError):
    """The weight file does not exist."""


def pickle_refusal(path) -> str:
    """The one wording for a file refused by ``torch.load(..., weights_only=True)`` (never 'use weights_only=False')."""
    return f"{path}: {_REFUSAL}"


_REFUSAL = ("refused to load: it contains pickled Python objects, which are not loaded from untrusted files "
            "(weights_only=True)")


def weights_path(encoder_weights) -> Path | None:
    """The local file named by ``encoder_weights``, ``None`` for ``None``/``"imagenet"``; a clear error else."""
    if encoder_weights is None or encoder_weights == "imagenet":
        return None
    if not isinstance(encoder_weights, (str, Path)):
        raise TypeError(f"encoder_weights must be None, 'imagenet' or a path, got {type(encoder_weights).__name__}")
    path = Path(encoder_weights).expanduser()
    if not path.is_file():
        raise MissingWeightsError(path, "encoder weights file does not exist (encoder_weights must be None, "
                                        "'imagenet' or the path of a state dict of the encoder)")
    return path


# --- reading ------------------------------------------------------------------------------------------------
def load_state_dict(path, *, device="cpu", check_finite: bool = False) -> dict[str, torch.Tensor]:
    """The flat ``{name: tensor}`` dict in ``path`` (``.safetensors``, else a ``torch.save`` file).

    ``check_finite``: a floating tensor holding NaN or ±inf is an error naming it (a corrupted model would
    otherwise answer NaN without a word)."""
    path = Path(path)
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import load_file

        _exists(path)
        try:
            state = load_file(str(path), device=str(device))
        except Exception as err:  # safetensors' errors do not name the file
            raise WeightsError(path, f"not a readable safetensors file ({err})") from err
    else:
        state = torch_load(path, device=device)
    state = as_state_dict(state, path)
    if check_finite:
        _check_finite(state, path)
    return state


def torch_load(path, *, device="cpu") -> Any:
    """What ``torch.save`` wrote to ``path`` — tensors, numbers, strings and containers of them only
    (``weights_only=True``): e.g. a checkpoint of a model's and an optimizer's states."""
    import torch

    path = Path(path)
    _exists(path)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(path, _unpickling_reason(err)) from None  # torch's text advises weights_only=False
    except Exception as err:  # a truncated zip, an unreadable file: torch's errors do not name it
        raise WeightsError(path, f"not a readable torch file ({_first_sentence(err)})") from err


def as_state_dict(obj: Any, path) -> dict[str, torch.Tensor]:
    """``obj`` if it is a non-empty flat ``{name: tensor}`` dict, else a :class:`WeightsError` naming ``path``."""
    import torch

    what = "not a state dict (a flat mapping of parameter names to tensors)"
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(path, f"{what}: it is {'empty' if isinstance(obj, dict) else type(obj).__name__}")
    wrong = next(((k, v) for k, v in obj.items() if not (isinstance(k, str) and torch.is_tensor(v))), None)
    if wrong is not None:
        raise WeightsError(path, f"{what}: {wrong[0]!r} is {type(wrong[1]).__name__}, not a tensor")
    return obj


def mismatch(state: dict, target: dict, shown: int = 3) -> str:
    """What keeps ``state`` (a file's tensors) from loading strictly into ``target`` (a model's state dict),
    in one line: "2 missing (a, b); 1 of another shape (c: file (3,) vs model (4,))"; "" where it fits."""
    def few(keys: list[str]) -> str:
        return ", ".join(keys[:shown]) + (f" … (+{len(keys) - shown})" if len(keys) > shown else "")

    missing, unexpected = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
              for k in sorted(set(state) & set(target)) if tuple(state[k].shape) != tuple(target[k].shape)]
    problems = [f"{len(missing)} missing ({few(missing)})" if missing else "",
                f"{len(unexpected)} unexpected ({few(unexpected)})" if unexpected else "",
                f"{len(shapes)} of another shape ({few(shapes)})" if shapes else ""]
    return "; ".join(p for p in problems if p)


def read_metadata(path) -> dict[str, str] | None:
    """The metadata in a safetensors file's header (``None`` where it has none)."""
    from safetensors import safe_open

    path = Path(path)
    _exists(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata()
    except Exception as err:  # safetensors' errors do not name the file
        raise WeightsError(path, f"not a readable safetensors file ({err})") from err


def _exists(path: Path) -> None:
    if not path.is_file():
        raise MissingWeightsError(path, "no such file" if not path.exists() else "not a file")


def _unpickling_reason(err: pickle.UnpicklingError) -> str:
    text = str(err)
    if "Unsupported operand" in text:  # not a pickle at all: random bytes, another format
        operand = re.search(r"Unsupported operand \S+", text)
        return f"not a readable torch file ({operand.group(0) if operand else 'not a torch.save file'})"
    what = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    return _REFUSAL + (f"; the first object it refers to: {what.group(1)}" if what else "")


def _first_sentence(err: BaseException) -> str:
    return str(err).split(". ", 1)[0].strip() or type(err).__name__


def _check_finite(state: dict, path: Path) -> None:
    import torch

    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsError(path, f"tensor {name!r} holds NaN or infinite values: the file is corrupted")


# --- writing ------------------------------------------------------------------------------------------------
def save_state_dict(state: dict, path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``state`` (tensors made contiguous, on the CPU) to the safetensors file ``path``, atomically, mode 0644."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
