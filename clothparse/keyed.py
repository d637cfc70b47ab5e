"""Folders keyed by their inputs: the one rule behind every cache of the pipeline.

A generated dataset, a refinement, a store, a training run, an evaluation and a book page are each
written into a folder whose content is decided by a *key* (a digest of everything that feeds it). The
folder counts as done only when its marker file holds that key, and the marker is written last, so an
interrupted or outdated folder is never mistaken for a finished one::

    folder = KeyedFolder(root / "refined", key)
    if not folder.is_complete():
        folder.start()              # drops a stale marker before anything is (re)written
        ...                         # write the content
        folder.mark_complete(n=42)  # {"key": key, "finished": ..., "n": 42}
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: The marker file of a finished keyed folder (its content: ``{"key": ..., "complete": true, ...}``).
COMPLETE = "COMPLETE"


def stable_hash(obj: Any, length: int = 12) -> str:
    """A short hash of a JSON-able object (sorted keys, so dict order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    """sha256 (hex) of a file's bytes, read ``block`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, obj: Any) -> None:
    """Write atomically (temp file + rename), so an interrupted run never leaves half a JSON."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in ``path``; a malformed file is a ``ValueError`` that names it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


@dataclass(frozen=True)
class KeyedFolder:
    """``path`` holds what ``key`` describes once its ``marker`` file says so."""

    path: Path
    key: str
    marker: str = COMPLETE

    @property
    def marker_path(self) -> Path:
        return Path(self.path) / self.marker

    def record(self) -> dict:
        """What the marker says ({} when there is none or it cannot be read)."""
        try:
            rec = json.loads(self.marker_path.read_text())
        except (OSError, ValueError):
            return {}
        return rec if isinstance(rec, dict) else {}

    def is_complete(self) -> bool:
        """The folder was finished for this very key."""
        rec = self.record()
        return rec.get("key") == self.key and rec.get("complete") is True

    def start(self) -> Path:
        """Create the folder and drop any marker, so a half-rewritten folder never reads as done."""
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self.marker_path.unlink(missing_ok=True)
        return Path(self.path)

    def claim(self, **info: Any) -> Path:
        """:meth:`start`, then a marker without the key: an interrupted run leaves a folder that reads as ours
        (to redo), never as complete and never as somebody else's."""
        path = self.start()
        write_json(self.marker_path, {**info, "complete": False})
        return path

    def remove(self, names) -> None:
        """Delete the named outputs of an earlier run (files or folders), so no stale one survives a rerun."""
        for name in names:
            p = Path(self.path) / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def mark_complete(self, **info: Any) -> None:
        """Write the marker last: ``{"key": ..., "complete": true, "finished": <UTC time>, **info}``."""
        write_json(self.marker_path, {**info, "key": self.key, "complete": True, "finished": now()})
