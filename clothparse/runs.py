"""Run folders: identity, provenance and the small JSON/CSV files every run writes.

A run folder is ``<runs_dir>/<profile>/<run-id>/``; the id derives from the parameters that change
the result and the data store's key, so a completed run is found again instead of retrained.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

COMPLETE = "COMPLETE"
FAILED = "FAILED"
PACKAGES = ("clothparse", "torch", "torchvision", "fastai", "segmentation-models-pytorch", "numpy", "pandas",
            "papermill", "jupyter-book", "matplotlib", "seaborn", "scipy", "pillow")


def stable_hash(obj: Any, length: int = 12) -> str:
    """A short hash of a JSON-able object (sorted keys, so dict order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def run_id(model: str, params: dict, store_key: str) -> str:
    """``<model>-<hash>``: readable, and unique per (parameters, data)."""
    return f"{model}-{stable_hash({'model': model, 'params': params, 'store': store_key})}"


def git_commit(repo: Path | None = None) -> str | None:
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def provenance(device: str, seed: int) -> dict:
    """Who/what/where of a run: git commit, package versions, device, seed, Python, host, start time."""
    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "device_description": device_description(device),
        "seed": seed,
        "started": now(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, obj: Any) -> None:
    """Write atomically (temp file + rename), so an interrupted run never leaves half a JSON."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / COMPLETE).is_file()


def mark_complete(run_dir: Path, info: dict | None = None) -> None:
    write_json(Path(run_dir) / COMPLETE, {"finished": now(), **(info or {})})
