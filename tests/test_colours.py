"""Garment colours: CIELAB conversions, dominant colours of a garment's pixels and their names."""
import numpy as np
import pytest

from clothparse.categories import CLASSES
from clothparse.colours import NAMED_COLOURS, dominant_colours, garment_colours, lab_to_srgb, name_colour, srgb_to_lab

TOP, PANTS, SHOE = (CLASSES.index(c) for c in ("top", "pants", "shoe"))
RED, NAVY, WHITE = (np.array(NAMED_COLOURS[c], float) for c in ("red", "navy", "white"))


def _shaded(rgb, shape, lo, rng):
    """``rgb`` under a lightness gradient (shadow factor lo..1 across the rows) with sensor noise."""
    f = np.linspace(lo, 1.0, shape[0])[:, None, None]
    return np.clip(rgb * f + rng.normal(0, 5, (*shape, 3)), 0, 255)


def test_lab_reference_values_and_round_trip():
    assert np.allclose(srgb_to_lab(np.array([255, 255, 255], np.uint8)), [100, 0, 0], atol=1e-3)
    assert np.allclose(srgb_to_lab(np.array([255, 0, 0], np.uint8)), [53.24, 80.09, 67.20], atol=0.01)
    assert np.allclose(srgb_to_lab(np.array([0, 0, 0], np.uint8)), [0, 0, 0], atol=1e-6)
    rgb = np.random.default_rng(0).integers(0, 256, (500, 3)).astype(np.uint8)
    assert np.array_equal(lab_to_srgb(srgb_to_lab(rgb)), rgb)
    assert name_colour(srgb_to_lab(np.array(NAMED_COLOURS["mustard"], np.uint8))) == "mustard"


def test_garment_colours_shaded_red_navy_and_a_tiny_shoe():
    rng = np.random.default_rng(0)
    h, w = 120, 80
    image = np.full((h, w, 3), 128.0)
    mask = np.zeros((h, w), np.uint8)
    mask[5:60, 10:70] = TOP
    image[5:60, 10:70] = _shaded(RED, (55, 60), 0.45, rng)   # a strong shadow gradient over the red top
    mask[60:115, 15:65] = PANTS
    image[60:115, 15:65] = _shaded(NAVY, (55, 50), 0.7, rng)
    mask[116:119, 2:5] = SHOE                                   # 9 pixels
    image = image.astype(np.uint8)
    found = garment_colours(image, mask)
    assert set(found) == {"top", "pants", "shoe"}
    top, pants, shoe = found["top"], found["pants"], found["shoe"]
    assert top.main.name == "red" and top.main.share > 0.9, top
    assert pants.main.name == "navy" and pants.main.share > 0.9, pants
    assert shoe.too_small and shoe.colours == () and shoe.pixels == 9 and shoe.main is None
    assert not top.too_small and top.pixels == 55 * 60
    assert top.main.hex.startswith("#") and len(top.main.hex) == 7
    assert garment_colours(image, mask) == found  # deterministic


def test_two_coloured_garment_keeps_both_colours():
    rng = np.random.default_rng(1)
    stripes = np.concatenate([_shaded(RED, (30, 40), 0.6, rng), _shaded(WHITE, (20, 40), 0.7, rng)]).astype(np.uint8)
    colours = dominant_colours(stripes.reshape(-1, 3))
    assert [c.name for c in colours] == ["red", "white"]
    assert colours[0].share == pytest.approx(0.6, abs=0.05) and colours[1].share == pytest.approx(0.4, abs=0.05)
    assert dominant_colours(stripes.reshape(-1, 3)[:50], min_pixels=100) == []




def test_erosion_is_by_the_documented_3x3_square():
    from clothparse.colours import _erode

    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    mask[1, 1] = False                       # a notch in a corner: its diagonal neighbour (2, 2) must go too
    once = _erode(mask, 1)
    assert not once[2, 2]                    # a 4-neighbour cross would keep it
    assert once[3, 3] and once.sum() == 8    # the 3×3 core minus the notched corner's neighbour
    full = np.ones((5, 5), bool)
    assert _erode(full, 1).sum() == 9        # the border counts as outside the mask
    assert not _erode(full, 3).any()
