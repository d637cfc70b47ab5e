"""The 9 classes and the paper's merge, resolved against the real label_descriptions.json."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from clothparse import categories as C

from conftest import label_descriptions_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_json() -> dict:
    return json.loads(label_descriptions_path().read_text(encoding="utf-8"))


# The paper, section 4.1: top = {0, 1}, overtop = {2, 3, 4, 5, 9}, pants = 6, shorts = 7, skirt = 8, dress = 10,
# shoe = 23, bag = 24; jumpsuit (11) excluded; everything else background.
PAPER_IDS = {"top": {0, 1}, "overtop": {2, 3, 4, 5, 9}, "pants": {6}, "shorts": {7}, "skirt": {8},
             "dress": {10}, "shoe": {23}, "bag": {24}}


def test_classes():
    assert C.CLASSES == ("background", "top", "overtop", "pants", "shorts", "skirt", "dress", "shoe", "bag")
    assert C.CLOTHING == C.CLASSES[1:] and C.NUM_CLASSES == 9 and C.NUM_CLOTHING == 8
    assert len(C.PALETTE) == 9 and len(set(C.PALETTE)) == 9 and len(C.SHORT_LABELS) == 9


def test_merge_matches_paper_ids(real_json):
    cmap = C.imaterialist_category_map(real_json)
    assert set(cmap.to_class) == set(range(46))
    for cls, ids in PAPER_IDS.items():
        assert {cid for cid, k in cmap.to_class.items() if k == C.CLASSES.index(cls)} == ids, cls
    garments = set().union(*PAPER_IDS.values())
    assert all(cmap.to_class[cid] == 0 for cid in set(range(46)) - garments)
    assert cmap.excluded_ids == {11}
    # Garment parts (27..33), closures (34, 35), decorations (36..45).
    assert cmap.part_ids == frozenset(range(27, 46))
    assert cmap.names[11] == "jumpsuit" and cmap.names[24] == "bag, wallet"


def test_merge_from_path(real_json):
    assert C.imaterialist_category_map(label_descriptions_path()) == C.imaterialist_category_map(real_json)


def test_merge_table(real_json):
    table = C.imaterialist_category_map(real_json).merge_table()
    assert len(table) == 46
    row = table.set_index("id").loc[11]
    assert row["merged class"] == "(image excluded)"
    assert table.set_index("id").loc[9, "merged class"] == "overtop"
    assert table["part"].sum() == 19


@pytest.mark.parametrize("old, new", [("skirt", "skirts"), ("bag, wallet", "bag"), ("jumpsuit", "overall")])
def test_renamed_category_raises(real_json, old, new):
    data = copy.deepcopy(real_json)
    [cat] = [c for c in data["categories"] if c["name"] == old]
    cat["name"] = new
    with pytest.raises(ValueError, match=f"lacks categories.*'{old}'"):
        C.imaterialist_category_map(data)


def test_names_match_case_and_space_insensitively(real_json):
    data = copy.deepcopy(real_json)
    for c in data["categories"]:
        c["name"] = "  " + c["name"].upper()
    assert C.imaterialist_category_map(data).to_class == C.imaterialist_category_map(real_json).to_class


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        C.load_label_descriptions(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        C.load_label_descriptions(bad)
    bad.write_text('{"attributes": []}')
    with pytest.raises(ValueError, match="no 'categories'"):
        C.imaterialist_category_map(bad)


def test_ccp_merge_is_a_partition():
    names = [n for ns in C.CCP_MERGE.values() for n in ns]
    assert len(names) == len(set(names))
    assert set(C.CCP_MERGE) == set(C.CLOTHING)
    assert "romper" not in names and "suit" not in names
    assert C.CCP_EXCLUDED == ("romper",) and C.CCP_SUIT_POLICY == "exclude"


def test_colorize():
    mask = np.array([[0, 1], [8, 3]])
    rgb = C.colorize(mask)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == C.PALETTE[0] and tuple(rgb[1, 0]) == C.PALETTE[8]
    with pytest.raises(ValueError, match="0..8"):
        C.colorize(np.array([[9]]))
