"""Dataset readers: each yields :class:`Sample` items (image, 9-class mask, id, classes present)."""
from clothparse.datasets.base import Sample, SkipReport
from clothparse.datasets.ccp import CCP
from clothparse.masks import classes_present

__all__ = ["Sample", "SkipReport", "classes_present", "open_dataset"]


def open_dataset(kind: str, root, **kw):
    """Open a dataset reader by name: ``"imaterialist"`` (also the synthetic and refined layouts) or ``"ccp"``."""
    kind = kind.lower()
    if kind in ("imaterialist", "synthetic", "refined"):
        # pandas (the train extra): the parser reads no dataset, yet imports this package for the store's resize
        from clothparse.datasets.imaterialist import IMaterialist

        return IMaterialist(root, **kw)
    if kind == "ccp":
        return CCP(root, **kw)
    raise ValueError(f"unknown dataset kind {kind!r}; use 'imaterialist', 'synthetic', 'refined' or 'ccp'")
