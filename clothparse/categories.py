"""The paper's 9 classes and the iMaterialist 2019 → 8 clothing classes merge.

The merge is defined by category *names* (as printed in the paper and in the Kaggle
``label_descriptions.json``) and resolved to ids against a given ``label_descriptions.json``,
so a renamed or missing category is an error instead of a silent background.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

#: The 9 classes of the paper, in the order of its tables (index = mask value).
CLASSES: tuple[str, ...] = ("background", "top", "overtop", "pants", "shorts", "skirt", "dress", "shoe", "bag")
#: The 8 clothing classes (ClassBranch / BBBranch channel order = CLASSES[1:]).
CLOTHING: tuple[str, ...] = CLASSES[1:]
NUM_CLASSES: int = len(CLASSES)
NUM_CLOTHING: int = len(CLOTHING)
BACKGROUND: int = 0
#: Short labels used in the paper's tables.
SHORT_LABELS: tuple[str, ...] = ("Bg", "Top", "Overtop", "Pants", "Shorts", "Skirt", "Dress", "Shoe", "Bag")

#: RGB palette for masks and plots (background black; garments distinguishable, colour-blind aware).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),        # background
    (230, 159, 0),    # top       orange
    (86, 180, 233),   # overtop   sky blue
    (0, 114, 178),    # pants     blue
    (0, 158, 115),    # shorts    green
    (240, 228, 66),   # skirt     yellow
    (204, 121, 167),  # dress     pink
    (213, 94, 0),     # shoe      vermillion
    (148, 103, 189),  # bag       purple
)

#: The paper's merge (section 4.1): merged class → iMaterialist category names.
IMATERIALIST_MERGE: dict[str, tuple[str, ...]] = {
    "top": ("shirt, blouse", "top, t-shirt, sweatshirt"),
    "overtop": ("sweater", "cardigan", "jacket", "vest", "coat"),
    "pants": ("pants",),
    "shorts": ("shorts",),
    "skirt": ("skirt",),
    "dress": ("dress",),
    "shoe": ("shoe",),
    "bag": ("bag, wallet",),
}
#: Images containing any of these categories are excluded (the paper drops jumpsuits).
IMATERIALIST_EXCLUDED: tuple[str, ...] = ("jumpsuit",)
#: Supercategories whose masks are parts/decorations of a garment: they never overwrite a garment.
IMATERIALIST_PART_SUPERCATEGORIES: tuple[str, ...] = ("garment parts", "closures", "decorations")


def palette_array():
    """The palette as a (9, 3) uint8 numpy array (index with a mask to colour it)."""
    import numpy as np

    return np.asarray(PALETTE, dtype=np.uint8)


def colorize(mask):
    """RGB image (H×W×3 uint8) of a 9-class mask."""
    import numpy as np

    mask = np.asarray(mask)
    if mask.size and (mask.min() < 0 or mask.max() >= NUM_CLASSES):
        raise ValueError(f"mask values must lie in 0..{NUM_CLASSES - 1}, got {mask.min()}..{mask.max()}")
    return palette_array()[mask]


#: How strongly :func:`overlay` tints garment pixels (book figures, refinement pages and the parser alike).
OVERLAY_ALPHA = 0.5


def overlay(image, mask, alpha: float = OVERLAY_ALPHA):
    """``image`` (H×W×3 uint8) with the garment pixels of ``mask`` blended with their class colour.

    Background pixels are left as they are; a mask of another size is resized to the image's (nearest), so
    a network-resolution prediction can be laid over the original photo.
    """
    import numpy as np

    image = np.asarray(image)
    mask = np.asarray(mask, dtype=np.uint8)
    if mask.shape != image.shape[:2]:
        from PIL import Image

        mask = np.asarray(Image.fromarray(mask).resize((image.shape[1], image.shape[0]), Image.Resampling.NEAREST))
    if image.dtype != np.uint8:  # not a photo's bytes: the blend itself, in float
        out = image.astype(np.float32)
        fg = mask > 0
        out[fg] = (1 - alpha) * out[fg] + alpha * colorize(mask)[fg].astype(np.float32)
        return np.round(out).astype(np.uint8)
    if mask.size and mask.max() >= NUM_CLASSES:
        colorize(mask)  # its ValueError
    # every (class, channel, value) blended once, in the float32 arithmetic of a per-pixel blend: a table
    # lookup per pixel gives the same bytes without float copies of the whole photo
    colours = palette_array().astype(np.float32)[:, None, :]
    values = np.arange(256, dtype=np.float32)[None, :, None]
    table = np.round((1 - alpha) * values + alpha * colours).astype(np.uint8)  # class × value × channel
    table[0] = np.arange(256, dtype=np.uint8)[:, None]  # background: left as it is
    tables = np.ascontiguousarray(table.transpose(2, 0, 1)).reshape(3, -1)  # channel × (class·256 + value)
    out = image.copy()
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return out
    # only the rectangle around the garments, one channel at a time into the output: outside it nothing changes,
    # and a lookup per channel is cheaper than one over an H×W×3 index
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    base = mask[box].astype(np.uint16) << 8
    for channel in range(3):
        np.take(tables[channel], base + image[box][:, :, channel], out=out[box][:, :, channel])
    return out


@dataclass(frozen=True)
class CategoryMap:
    """iMaterialist category id → merged class index, resolved against one label_descriptions.json."""

    to_class: dict[int, int]            # every category id → 0..8 (0 = background)
    excluded_ids: frozenset[int]        # images with these ids are dropped (jumpsuit)
    part_ids: frozenset[int]            # garment parts, closures, decorations
    names: dict[int, str] = field(default_factory=dict)

    def merge_table(self):
        """A DataFrame of original category → merged class (for the book)."""
        import pandas as pd

        rows = []
        for cid, name in sorted(self.names.items()):
            if cid in self.excluded_ids:
                target = "(image excluded)"
            else:
                target = CLASSES[self.to_class[cid]]
            rows.append({"id": cid, "category": name, "merged class": target,
                         "part": cid in self.part_ids})
        return pd.DataFrame(rows)


def load_label_descriptions(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label_descriptions.json not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if "categories" not in data:
        raise ValueError(f"{path}: no 'categories' list")
    return data


def imaterialist_category_map(label_descriptions: str | Path | dict) -> CategoryMap:
    """Resolve the paper's merge against a ``label_descriptions.json`` (path or parsed dict).

    Raises ``ValueError`` when a category the merge names is missing (e.g. renamed upstream).
    """
    data = label_descriptions if isinstance(label_descriptions, dict) else load_label_descriptions(label_descriptions)
    by_name: dict[str, int] = {}
    names: dict[int, str] = {}
    supers: dict[int, str] = {}
    for cat in data["categories"]:
        cid, name = int(cat["id"]), str(cat["name"]).strip()
        by_name[name.lower()] = cid
        names[cid] = name
        supers[cid] = str(cat.get("supercategory", "")).strip().lower()
    wanted = [n for ns in IMATERIALIST_MERGE.values() for n in ns] + list(IMATERIALIST_EXCLUDED)
    missing = [n for n in wanted if n.lower() not in by_name]
    if missing:
        raise ValueError(
            f"label_descriptions.json lacks categories the paper's merge needs: {missing}; "
            f"known names: {sorted(by_name)}")
    to_class = {cid: 0 for cid in names}
    for cls, cat_names in IMATERIALIST_MERGE.items():
        for n in cat_names:
            to_class[by_name[n.lower()]] = CLASSES.index(cls)
    excluded = frozenset(by_name[n.lower()] for n in IMATERIALIST_EXCLUDED)
    parts = frozenset(cid for cid, s in supers.items() if s in IMATERIALIST_PART_SUPERCATEGORIES)
    return CategoryMap(to_class=to_class, excluded_ids=excluded, part_ids=parts, names=names)


# --- Clothing Co-Parsing (CCP) -------------------------------------------------------------
#: CCP label names → merged class, following the paper's merge logic (see ../shared/data/README.md).
CCP_MERGE: dict[str, tuple[str, ...]] = {
    "top": ("blouse", "shirt", "t-shirt", "top", "sweatshirt", "hoodie"),
    "overtop": ("sweater", "cardigan", "jacket", "vest", "coat", "blazer", "jumper"),
    "pants": ("pants", "jeans", "leggings"),
    "shorts": ("shorts",),
    "skirt": ("skirt",),
    "dress": ("dress",),
    "shoe": ("shoes", "boots", "heels", "flats", "pumps", "sandals", "sneakers", "loafers", "clogs", "wedges"),
    "bag": ("bag", "purse", "wallet"),
}
#: CCP's jumpsuit: images containing it are excluded, as the paper excludes jumpsuits.
CCP_EXCLUDED: tuple[str, ...] = ("romper",)
#: Our choice for CCP's ``suit`` (one label covering jacket and trousers at once): such images
#: are excluded, because its pixels cannot be split into overtop vs pants, and mapping all of it
#: to either class (or to background) would teach a wrong label for half the garment.
CCP_SUIT_POLICY: str = "exclude"
