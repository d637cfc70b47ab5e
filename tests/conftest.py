import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# Tests never reach the network and use few threads: the machines are small and shared.
os.environ.setdefault("TORCH_HOME", str(ROOT / ".pytest_cache" / "torch_home"))
os.environ.setdefault("MPLBACKEND", "Agg")
# One intra-op thread, here and in every subprocess a test starts: CPU reductions are bit-reproducible
# only at a fixed thread count, and tests compare runs across processes (determinism, resume after kill).
TEST_THREADS = 1
os.environ["OMP_NUM_THREADS"] = str(TEST_THREADS)
os.environ["MKL_NUM_THREADS"] = str(TEST_THREADS)
torch.set_num_threads(TEST_THREADS)


#: The suite's peak use of the temp folder, measured at ~1.9 GB (smoke book, training runs), with headroom.
NEEDS_FREE_GB = 3


def pytest_sessionstart(session):
    """Stop at once, saying why, when the disk cannot hold the tests' folders: a full disk otherwise shows
    up as scattered fixture errors and hung subprocesses long after the cause."""
    free_gb = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    if free_gb < NEEDS_FREE_GB:
        pytest.exit(f"only {free_gb:.1f} GB free in {tempfile.gettempdir()}; the tests need about "
                    f"{NEEDS_FREE_GB} GB for their temporary folders", returncode=1)


def label_descriptions_path() -> Path:
    """The real Kaggle file: $CLOTHPARSE_LABEL_DESCRIPTIONS, the packaged copy, or ../shared/data."""
    candidates = [os.environ.get("CLOTHPARSE_LABEL_DESCRIPTIONS"),
                  ROOT / "clothparse" / "data" / "label_descriptions.json",
                  SHARED / "data" / "imaterialist2019" / "label_descriptions.json"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    pytest.skip("label_descriptions.json not found (set CLOTHPARSE_LABEL_DESCRIPTIONS)")


def tiny_profile(tmp: Path, name: str = "tiny", **train) -> dict:
    """A real profile (synthetic data, two models) small enough to train in seconds on a CPU. Its learning rate is
    below the paper's: at three batches an epoch a randomly initialised U-Net's loss can jump at 5e-4."""
    return {
        "name": name,
        "description": "tiny test profile",
        "data": {"kind": "synthetic", "refine": True, "detector": "persons_csv",
                 "synthetic": {"n_images": 40, "height": 96, "width": 64, "seed": 3, "second_person_share": 0.3}},
        "size": [64, 64],
        "train": {"batch_size": 8, "epochs_frozen": 1, "epochs_unfrozen": 2, "lr_max": 3e-4, "wd": 1e-3,
                  "seed": 0, "amp": "auto", "num_workers": 0, "augment": True, **train},
        "models": ["unet", "extended_unet"],
        "table1_models": ["unet"],
        "device": "cpu",
        "evaluate": {"batch_size": 16, "qualitative_sample": 100},
        "work_dir": str(tmp / "work"),
        "runs_dir": str(tmp / "runs"),
    }


def write_profile(profile: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(profile))
    return path


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="module")
def built():
    """Models at 64×64 (seed 0), built once per module: building dominates the model tests' time."""
    from clothparse.models import build_model

    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = build_model(name, input_size=(64, 64))
        return cache[name]
    return get
