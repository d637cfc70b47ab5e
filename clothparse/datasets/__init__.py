"""Dataset readers: each yields :class:`Sample` items (image, 9-class mask, id, classes present)."""
from clothparse.datasets.base import Sample, SkipReport
from clothparse.masks import classes_present

__all__ = ["Sample", "SkipReport", "classes_present", "open_dataset"]


def open_dataset(kind: str, root, **kw):
    """Open a dataset reader by name: ``"imaterialist"`` (also the synthetic and refined layouts) or ``"ccp"``."""
    kind = kind.lower()
    if kind in ("imaterialist", "synthetic", "refined"):
        from clothparse.datasets.imaterialist import IMaterialist

        return IMaterialist(root, **kw)
    if kind == "ccp":
        from clothparse.datasets.ccp import CCP

        return CCP(root, **kw)
    raise ValueError(f"unknown dataset kind {kind!r}; use 'imaterialist', 'synthetic', 'refined' or 'ccp'")
