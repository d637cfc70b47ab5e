"""Garment colours: CIELAB conversions, dominant colours of a garment's pixels and their names."""
import numpy as np
import pytest

from clothparse.categories import CLASSES
from clothparse.masks import tight_boxes
from clothparse.parser.colours import (
    NAMED_COLOURS,
    delta_e_ciede2000,
    dominant_colours,
    garment_colours,
    lab_to_srgb,
    name_colour,
    srgb_to_lab,
)

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
    from clothparse.parser.colours import _erode

    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    mask[1, 1] = False                       # a notch in a corner: its diagonal neighbour (2, 2) must go too
    once = _erode(mask, 1)
    assert not once[2, 2]                    # a 4-neighbour cross would keep it
    assert once[3, 3] and once.sum() == 8    # the 3×3 core minus the notched corner's neighbour
    full = np.ones((5, 5), bool)
    assert _erode(full, 1).sum() == 9        # the border counts as outside the mask
    assert not _erode(full, 3).any()


#: Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes, supplementary test
#: data, and mathematical observations", Table 1: L1 a1 b1, L2 a2 b2, ΔE00 — all 34 pairs.
SHARMA_PAIRS = np.array([
    [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
    [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
    [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
    [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
    [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
    [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
    [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
    [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
    [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
    [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
    [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
    [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
    [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
    [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
    [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
    [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
    [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
    [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
    [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
    [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
])


def test_ciede2000_reproduces_sharmas_reference_pairs():
    lab1, lab2, expected = SHARMA_PAIRS[:, :3], SHARMA_PAIRS[:, 3:6], SHARMA_PAIRS[:, 6]
    np.testing.assert_allclose(delta_e_ciede2000(lab1, lab2), expected, atol=5e-5)
    np.testing.assert_allclose(delta_e_ciede2000(lab2, lab1), expected, atol=5e-5)  # symmetric
    assert delta_e_ciede2000(lab1[0], lab1[0]) == 0
    # k_L divides the lightness term: pairs of equal chroma and hue differ by ΔL / (k_L·S_L) alone
    grey, lighter = np.array([50.0, 0, 0]), np.array([60.0, 0, 0])
    assert delta_e_ciede2000(grey, lighter, k_l=2.0) == pytest.approx(delta_e_ciede2000(grey, lighter) / 2)


def test_names_by_ciede2000_with_lightness_counting_half():
    lab = srgb_to_lab(np.array(list(NAMED_COLOURS.values()), np.uint8))
    assert name_colour(lab) == list(NAMED_COLOURS)  # every entry names itself
    # garment colours measured on CCP photos (lit colours of parsed garments): a navy blazer, a violet dress,
    # an olive bag, tan wedges — a Euclidean distance in (L/2, a, b) called them denim, blue, khaki and rust
    for rgb, name in [((55, 63, 100), "navy"), ((84, 56, 172), "purple"), ((113, 105, 72), "olive"),
                      ((178, 113, 56), "tan")]:
        assert name_colour(srgb_to_lab(np.array(rgb, np.uint8))) == name, (rgb, name)


def test_garment_colours_do_not_depend_on_where_the_garment_lies():
    # colours are computed inside the garment's tight box: the same garment anywhere in a photo, and alone,
    # gives the same pixels in the same order, hence the same colours
    rng = np.random.default_rng(4)
    garment = np.zeros((80, 60), np.uint8)
    garment[10:70, 5:55] = 3
    garment[30:50, 20:40] = 5
    patch = np.clip(rng.normal(120, 40, (80, 60, 3)), 0, 255).astype(np.uint8)
    patch[garment == 3] = (30, 38, 88)
    alone = garment_colours(patch, garment, erode=2)
    for y, x in [(0, 0), (37, 91), (120, 140)]:
        image = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
        mask = np.zeros((200, 200), np.uint8)
        image[y:y + 80, x:x + 60], mask[y:y + 80, x:x + 60] = patch, garment
        assert garment_colours(image, mask, erode=2) == alone
        boxes = tight_boxes(mask, [3, 5])
        assert garment_colours(image, mask, erode=2, boxes=boxes) == alone
    assert alone["pants"].main.name == "navy"


@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_erosion_equals_scipys_iterated_3x3(steps):
    from scipy.ndimage import binary_erosion

    from clothparse.parser.colours import _erode

    rng = np.random.default_rng(steps)
    for shape in [(40, 30), (1, 9), (12, 1), (3, 3)]:
        mask = rng.random(shape) < 0.8
        mask[: shape[0] // 2] = True
        expected = binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=steps, border_value=0)
        assert np.array_equal(_erode(mask, steps), expected)


def test_kmeans_stops_once_its_centres_stand_still():
    """On a smooth gradient Lloyd's labels keep trading places along the boundaries long after the centres
    have settled; stopping at a centre shift below ``tol`` gives the fully converged centres within it."""
    from clothparse.parser.colours import _kmeans

    rng = np.random.default_rng(0)
    ramp = _shaded(np.array(NAMED_COLOURS["denim"], float), (100, 50), 0.3, rng).reshape(-1, 3).astype(np.uint8)
    x = srgb_to_lab(ramp) * np.array([0.5, 1.0, 1.0])
    labels, centres = _kmeans(x, 6, seed=0)
    stopped = next(n for n in range(1, 26) if np.array_equal(_kmeans(x, 6, seed=0, iters=n, tol=0.0)[0], labels))
    full_labels, full_centres = _kmeans(x, 6, seed=0, iters=10_000, tol=0.0)
    assert stopped < 25 and not np.array_equal(labels, full_labels)  # labels still moving when it stopped
    assert len(centres) == len(full_centres)
    order, full_order = np.argsort(centres[:, 0]), np.argsort(full_centres[:, 0])
    assert np.abs(centres[order] - full_centres[full_order]).max() < 1.0


def test_weighted_kmeans_counts_each_point_as_often_as_its_weight():
    from clothparse.parser.colours import _kmeans

    rng = np.random.default_rng(3)
    points = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(40, 1, (40, 3))])
    weights = rng.integers(1, 6, len(points))
    labels, centres = _kmeans(points, 2, seed=0, weights=weights)
    repeated_labels, repeated = _kmeans(np.repeat(points, weights, axis=0), 2, seed=0)
    assert np.array_equal(labels[:40], np.full(40, labels[0])) and labels[0] != labels[40]
    for j in range(2):  # each centre is the weighted mean of its points: that of the points repeated
        mean = np.average(points[labels == j], axis=0, weights=weights[labels == j])
        assert np.allclose(centres[j], mean)
        assert np.allclose(np.sort(centres[:, 0]), np.sort(repeated[:, 0]))


def test_binned_kmeans_keeps_a_bin_together_and_its_means_exact():
    """Pixels that share a 5-bit colour bin get one label; the clusters are those of the pixels."""
    from clothparse.parser.colours import BIN_BITS, _kmeans_binned

    rng = np.random.default_rng(4)
    red = np.clip(rng.normal((200, 40, 40), 6, (600, 3)), 0, 255).astype(np.uint8)
    navy = np.clip(rng.normal((30, 40, 90), 6, (400, 3)), 0, 255).astype(np.uint8)
    pixels = np.concatenate([red, navy])
    x = srgb_to_lab(pixels) * np.array([0.5, 1.0, 1.0])
    labels, centres = _kmeans_binned(pixels, x, 6, seed=0)
    bins = [tuple(p) for p in pixels >> (8 - BIN_BITS)]
    for b in set(bins):
        assert len({labels[i] for i, other in enumerate(bins) if other == b}) == 1
    assert not set(labels[:600]) & set(labels[600:])  # no cluster mixes red and navy
    assert np.allclose(centres, [x[labels == j].mean(0) for j in range(len(centres))])


def test_merging_close_centres_is_merging_the_groups_by_their_means():
    """Merging on the k-means centres and counts gives the groups that merging the members by their means does."""
    from clothparse.parser.colours import _merge_close, _merge_pairs

    rng = np.random.default_rng(5)
    for trial in range(20):
        labels = rng.integers(0, 6, 300)
        x = rng.normal(0, 8, (300, 3)) + rng.normal(0, 15, (6, 3))[labels]
        centres = np.array([x[labels == j].mean(0) for j in range(6)])
        groups = [np.flatnonzero(labels == j) for j in np.unique(labels)]
        expected = _merge_pairs(groups, lambda g: x[g].mean(0),
                                lambda p, q: float(np.linalg.norm(p - q)) / 12.0)
        merged = _merge_close(labels, centres, 12.0)
        assert sorted(map(sorted, map(list, merged))) == sorted(map(sorted, map(list, expected))), trial


def test_a_large_photo_is_read_on_a_grid_with_its_full_pixel_counts():
    """Above ``max_pixels`` every s-th row and column is read (pixels as they are, not averaged: a fine
    two-colour print keeps both colours), the counts behind ``too_small`` stay the full photo's."""
    rng = np.random.default_rng(1)
    h, w = 300, 200
    image = np.full((h, w, 3), 128.0)
    mask = np.zeros((h, w), np.uint8)
    mask[10:150, 20:180] = TOP
    image[10:150, 20:180] = _shaded(RED, (140, 160), 0.6, rng)
    image[10:150:4, 20:180] = WHITE  # a stripe every 4th row: on every 2nd row of the grid
    mask[200:290, 30:170] = PANTS
    image[200:290, 30:170] = _shaded(NAVY, (90, 140), 0.8, rng)
    mask[295:300, 0:30] = SHOE  # 150 pixels: 40 on the grid, under min_pixels there
    image = image.astype(np.uint8)
    found = garment_colours(image, mask, max_pixels=h * w // 4)  # stride 2
    full = garment_colours(image, mask, max_pixels=None)
    counts = {v: int((mask == v).sum()) for v in range(1, 9)}
    on_grid = garment_colours(image[::2, ::2], mask[::2, ::2], classes=["top", "pants", "shoe"],
                              pixel_counts=counts, max_pixels=None)
    assert found == on_grid
    assert found["shoe"].pixels == 150 and not found["shoe"].too_small and found["shoe"].main is not None
    assert found["top"].pixels == full["top"].pixels == 140 * 160
    for g in ("top", "pants"):
        assert [c.name for c in found[g].colours] == [c.name for c in full[g].colours], (found[g], full[g])
    assert {c.name for c in found["top"].colours} >= {"red", "white"}
    assert garment_colours(image, mask, max_pixels=h * w) == full  # not larger: every pixel
