"""One garment of a parsed photo, on hand-made masks: class names checked against the project's classes,
``ClassMask`` called with a name gives that class's boolean mask while staying the plain class-id array for
everything else, a cut-out is the box's pixels of the garment on transparent black, and the checkerboard
shows the transparency."""
import numpy as np
import pytest

from clothparse.categories import CLASSES, CLOTHING
from clothparse.parser.garments import ClassMask, class_index, cutout, on_checkerboard, parse_classes

TOP, PANTS, SKIRT = (CLASSES.index(c) for c in ("top", "pants", "skirt"))


def hand_mask() -> np.ndarray:
    """6×5: a top in rows 0-2 (columns 1-3), pants in rows 3-5 (columns 1-2 and 3), background around."""
    mask = np.zeros((6, 5), np.uint8)
    mask[0:3, 1:4] = TOP
    mask[3:6, 1:3] = PANTS
    mask[4:6, 3] = PANTS
    return mask


def test_class_names_and_ids():
    assert [class_index(c) for c in CLOTHING] == list(range(1, len(CLASSES)))
    assert class_index("background", clothing_only=False) == 0
    with pytest.raises(ValueError, match="unknown clothing class 'background'; the clothing classes are top, "):
        class_index("background")
    with pytest.raises(ValueError, match="unknown class 'Top'; the classes are background, top"):
        class_index("Top", clothing_only=False)


def test_parse_classes_gives_the_project_order_or_none():
    assert parse_classes("skirt, pants") == ("pants", "skirt") == tuple(sorted(("skirt", "pants"), key=CLOTHING.index))
    assert parse_classes(["bag", "top", "bag"]) == ("top", "bag")
    for everything in (None, "", " , ", []):
        assert parse_classes(everything) is None
    with pytest.raises(ValueError, match="unknown clothing class 'gown'"):
        parse_classes("pants,gown")
    with pytest.raises(ValueError, match="unknown clothing class 'background'"):
        parse_classes(["background"])


def test_a_class_mask_called_with_a_name_is_that_class():
    raw = hand_mask()
    mask = ClassMask(raw)
    assert isinstance(mask, np.ndarray) and mask.dtype == np.uint8 and mask.shape == (6, 5)
    top = mask("top")
    assert type(top) is np.ndarray and top.dtype == bool
    assert top.sum() == 9 and top[0:3, 1:4].all() and not top[3:].any()
    assert mask("pants").sum() == 8 and mask("background").sum() == 30 - 9 - 8
    assert not mask("dress").any()
    assert np.array_equal(mask("top") | mask("pants") | mask("background"), np.ones((6, 5), bool))
    with pytest.raises(ValueError, match="unknown class 'gown'"):
        mask("gown")
    assert ClassMask(raw.tolist()).dtype == np.asarray(raw.tolist()).dtype  # any array-like


def test_a_class_mask_does_not_spread_into_results():
    mask = ClassMask(hand_mask())
    assert type(mask[1:4]) is ClassMask and mask[1:4]("pants").sum() == 2  # slices keep the call
    assert type(mask == PANTS) is np.ndarray and (mask == PANTS).sum() == 8
    assert type(mask + 1) is np.ndarray and type(np.where(mask > 0, 1, 0)) is np.ndarray
    total = mask.sum()
    assert not isinstance(total, np.ndarray) and total == TOP * 9 + PANTS * 8
    assert mask.max() == PANTS and not isinstance(mask.max(), np.ndarray)
    assert np.array_equal(np.asarray(mask), hand_mask())


def test_a_cutout_is_the_garment_in_its_box_on_transparent_black():
    mask = hand_mask()
    image = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3) + 1  # no pixel is black
    pants = mask == PANTS
    out = cutout(image, pants, (1, 3, 4, 6))                          # x 1..3, y 3..5 (max exclusive)
    assert out.shape == (3, 3, 4) and out.dtype == np.uint8
    assert out[..., 3].tolist() == [[255, 255, 0], [255, 255, 255], [255, 255, 255]]
    assert np.array_equal(out[0, 0, :3], image[3, 1]) and np.array_equal(out[2, 2, :3], image[5, 3])
    assert out[0, 2].tolist() == [0, 0, 0, 0]                         # outside the garment: transparent black
    # a box larger than the garment keeps only the garment; an empty box is an empty cut-out
    whole = cutout(image, pants, (0, 0, 5, 6))
    assert whole.shape == (6, 5, 4) and np.array_equal(whole[..., 3] == 255, pants)
    assert np.array_equal(whole[pants, :3], image[pants]) and not whole[~pants].any()
    assert cutout(image, pants, (2, 2, 2, 2)).shape == (0, 0, 4)
    with pytest.raises(ValueError, match=r"the image \(6×5\) and the garment's mask \(3×5\) differ in size"):
        cutout(image, pants[:3], (0, 0, 5, 3))


def test_a_cutout_on_the_checkerboard():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    board = on_checkerboard(rgba, square=2)
    assert tuple(board[0, 0]) == (10, 20, 30) and tuple(board[0, 1]) == (255, 255, 255)
    assert tuple(board[0, 2]) == (228, 228, 228)  # the next check
    assert tuple(board[2, 2]) == (255, 255, 255) and tuple(board[2, 0]) == (228, 228, 228)
    rgba[1, 1] = (0, 0, 0, 128)                    # half transparent black over a light check
    assert board.dtype == np.uint8 and on_checkerboard(rgba, square=2)[1, 1].tolist() == [round(255 * 127 / 255)] * 3
    # the default check is a twelfth of the shorter side, at least 2 pixels
    big = on_checkerboard(np.zeros((48, 60, 4), np.uint8))
    assert (big[:4, :4] == 255).all() and (big[0, 4:8] == 228).all()
    assert on_checkerboard(np.zeros((5, 5, 4), np.uint8))[0, :4, 0].tolist() == [255, 255, 228, 228]
    assert (on_checkerboard(np.zeros((2, 2, 4), np.uint8), shades=(9, 9)) == 9).all()
