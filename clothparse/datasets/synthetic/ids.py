"""The original iMaterialist 2019 category ids the generator draws, and the merged class of each."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from clothparse.categories import CLASSES, imaterialist_category_map

# Original iMaterialist 2019 category ids (checked against label_descriptions.json by generate()).
SHIRT, TOP, SWEATER, CARDIGAN, JACKET, VEST, PANTS, SHORTS, SKIRT, COAT, DRESS, JUMPSUIT = range(12)
GLASSES, HAT, WATCH, BELT, TIGHTS, SHOE, BAG, SCARF = 13, 14, 18, 19, 21, 23, 24, 25
COLLAR, LAPEL, SLEEVE, POCKET, NECKLINE, ZIPPER = 28, 29, 31, 32, 33, 35
#: The names these ids must have in label_descriptions.json.
CATEGORY_NAMES: dict[int, str] = {
    0: "shirt, blouse", 1: "top, t-shirt, sweatshirt", 2: "sweater", 3: "cardigan", 4: "jacket", 5: "vest",
    6: "pants", 7: "shorts", 8: "skirt", 9: "coat", 10: "dress", 11: "jumpsuit", 13: "glasses", 14: "hat",
    18: "watch", 19: "belt", 21: "tights, stockings", 23: "shoe", 24: "bag, wallet", 25: "scarf", 28: "collar",
    29: "lapel", 31: "sleeve", 32: "pocket", 33: "neckline", 35: "zipper",
}
#: Internal class of a jumpsuit: a garment of its own while drawing, never written as semantic.
EXCLUDED_CLASS = len(CLASSES)


def default_label_descriptions() -> Path:
    """The copy of the real iMaterialist 2019 ``label_descriptions.json`` shipped in the package."""
    try:
        path = Path(str(resources.files("clothparse").joinpath("data/label_descriptions.json")))
    except (NotADirectoryError, TypeError):  # a stale editable install can expose the package as a namespace
        path = Path(__file__).resolve().parents[2] / "data" / "label_descriptions.json"
    return path


@lru_cache(maxsize=1)
def merged_class() -> dict[int, int]:
    """Category id → merged class 0..8 (jumpsuit → :data:`EXCLUDED_CLASS`), from the shipped file."""
    cmap = imaterialist_category_map(default_label_descriptions())
    out = {cid: (0 if cid in cmap.part_ids else cls) for cid, cls in cmap.to_class.items()}
    for cid in cmap.excluded_ids:
        out[cid] = EXCLUDED_CLASS
    return out
