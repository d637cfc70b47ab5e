"""clothparse — the reproducible companion to *Clothing Parsing using Extended U-Net*
(Vozáriková, Staňa, Semanišín) and a clothing parser.

Heavy submodules (torch, fastai) load on first use, so ``import clothparse`` stays cheap.
"""
from __future__ import annotations

import importlib

from clothparse.categories import CLASSES, CLOTHING, NUM_CLASSES

__version__ = "0.1.0"
__all__ = ["CLASSES", "CLOTHING", "NUM_CLASSES", "Parser", "build_model", "load_profile"]

# Functions named like their module (train, evaluate, parse) are imported from the module,
# e.g. ``from clothparse.parser.parse import parse``: a lazy attribute would be shadowed by the submodule.
_LAZY = {
    "build_model": ("clothparse.models", "build_model"),
    "load_profile": ("clothparse.profiles", "load_profile"),
    "Parser": ("clothparse.parser.parse", "Parser"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'clothparse' has no attribute {name!r}")
