"""The paper's reported numbers (Tables 1–5, section 4.1), shipped with the package.

Source: ``clothparse/data/paper_tables.yaml``, a copy of the transcription of the paper's tables.
"""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import yaml

#: Row names of Table 2 as the paper prints them → our model names (``build_model``).
TABLE2_MODEL_NAMES: dict[str, str] = {
    "FPN": "fpn",
    "DeepLabV3": "deeplabv3",
    "DeepLabV3+": "deeplabv3plus",
    "Plain U-Net": "unet",
    "Our model": "extended_unet",
    "ClassBranch only": "classbranch_only",
    "Branches": "branches",
}


@lru_cache(maxsize=1)
def tables() -> dict:
    """All transcribed numbers as a nested dict (percentages)."""
    return yaml.safe_load(files("clothparse").joinpath("data/paper_tables.yaml").read_text(encoding="utf-8"))


def table2_row(model: str) -> dict:
    """Table 2 row for a paper row name (``"Our model"``) or a model name (``"extended_unet"``)."""
    t2 = tables()["table2_models"]
    if model in t2:
        return t2[model]
    inverse = {v: k for k, v in TABLE2_MODEL_NAMES.items()}
    if model in inverse:
        return t2[inverse[model]]
    raise KeyError(f"no Table 2 row for {model!r}; known: {sorted(t2)} / {sorted(inverse)}")
