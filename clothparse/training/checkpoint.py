"""The resume checkpoint of a run folder: what :class:`~clothparse.training.callbacks.RunRecorder` writes after
every epoch and what a resumed run reads (``checkpoints/last.pt``, the model's and optimizer's tensors, and
``checkpoints/last.json``, the schedule position and history)."""
from __future__ import annotations

import os

import torch

from clothparse.keyed import read_json, write_json
from clothparse.runs import RunDir
from clothparse.training.distributed import unwrap
from clothparse.weights import WeightsError, torch_load

__all__ = ["save_checkpoint", "read_checkpoint", "apply_checkpoint", "checkpoint_state", "remove_checkpoint"]

#: what a user can do about a checkpoint that cannot be read
_HINT = "delete it to train the run from the start"


def save_checkpoint(learn, run: RunDir, phase: int, epochs_done: int, history: list[dict]) -> None:
    """Model and optimizer (tensors, loadable with ``weights_only=True``) + JSON state, atomically.

    No random state is saved: :class:`~clothparse.training.callbacks.PositionalSeed` reseeds every source from
    the schedule position."""
    path, state_path = run.checkpoint_path, run.checkpoint_state_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": unwrap(learn.model).state_dict(), "opt": learn.opt.state_dict()}, tmp)
    write_json(state_path.with_suffix(".json.tmp"), {"phase": phase, "epochs_done": epochs_done, "history": history})
    # the .pt is renamed first: a crash between the two renames leaves an older JSON, i.e. one epoch redone
    os.replace(tmp, path)
    os.replace(state_path.with_suffix(".json.tmp"), state_path)


def checkpoint_state(run: RunDir) -> tuple[dict | None, str]:
    """The schedule position of a resumable checkpoint, or ``(None, why not)``.

    Only a complete pair (``last.pt`` *and* ``last.json``) resumes: a JSON without its weights would
    otherwise "resume" from random weights and skip what was trained."""
    pt, state = run.checkpoint_path, run.checkpoint_state_path
    if not pt.is_file() and not state.is_file():
        return None, "no checkpoint"
    if not (pt.is_file() and state.is_file()):
        have, missing = (pt, state) if pt.is_file() else (state, pt)
        return None, f"{have.name} without {missing.name}"
    try:
        return read_json(state), ""
    except ValueError as err:
        return None, str(err)


def read_checkpoint(run: RunDir) -> dict:
    """The model and optimizer states of the resume checkpoint (tensors only: ``weights_only=True``)."""
    path = run.checkpoint_path
    try:
        blob = torch_load(path)
    except WeightsError as err:
        raise err.with_hint(_HINT) from err
    if not (isinstance(blob, dict) and isinstance(blob.get("model"), dict) and isinstance(blob.get("opt"), dict)):
        raise WeightsError(path, f"not a clothparse checkpoint (no model and optimizer states); {_HINT}")
    return blob


def apply_checkpoint(learn, blob: dict) -> None:
    """Put the states of :func:`read_checkpoint` into ``learn``'s model and optimizer."""
    unwrap(learn.model).load_state_dict(blob["model"])
    if learn.opt is None:
        learn.create_opt()
    learn.opt.load_state_dict(blob["opt"])


def remove_checkpoint(run: RunDir) -> None:
    """Delete the resume checkpoint of a run folder (the .pt, its JSON state and any temporaries)."""
    pt, state = run.checkpoint_path, run.checkpoint_state_path
    for p in (pt, state, pt.with_suffix(".tmp"), state.with_suffix(".json.tmp")):
        p.unlink(missing_ok=True)
    try:
        pt.parent.rmdir()
    except OSError:  # not empty: something else lives there; leave it
        pass
