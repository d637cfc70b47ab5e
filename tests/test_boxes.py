import pytest
import torch

from clothparse.models.boxes import boxes_from_masks


def test_hand_made_masks_give_exact_boxes():
    masks = torch.zeros(2, 4, 5, dtype=torch.long)
    masks[0, 1:3, 2:4] = 1          # top: rows 1..2, cols 2..3
    masks[0, 3, 0] = 7              # shoe: one pixel at row 3, col 0
    masks[0, 0, 4] = 7              #   and one at row 0, col 4 → one box spanning both
    masks[1] = 8                    # bag fills image 2
    boxes, present = boxes_from_masks(masks)
    assert boxes.shape == (2, 8, 4) and boxes.dtype == torch.float32
    assert present.dtype == torch.bool
    expected_present = torch.zeros(2, 8, dtype=torch.bool)
    expected_present[0, 0] = expected_present[0, 6] = expected_present[1, 7] = True
    assert torch.equal(present, expected_present)
    assert boxes[0, 0].tolist() == pytest.approx([2 / 5, 1 / 4, 4 / 5, 3 / 4])
    assert boxes[0, 6].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])
    assert boxes[1, 7].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])
    # absent classes have all-zero boxes
    assert boxes[~present].abs().sum() == 0


def test_single_pixel_and_background_only():
    masks = torch.zeros(2, 3, 3, dtype=torch.uint8)
    masks[0, 2, 1] = 5
    boxes, present = boxes_from_masks(masks)
    assert boxes[0, 4].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])
    assert present.sum() == 1
    assert not present[1].any() and boxes[1].abs().sum() == 0


def test_matches_a_loop_over_pixels_on_random_masks():
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 9, (3, 7, 6), generator=g)
    masks[1][masks[1] == 3] = 0     # make sure some class is absent
    boxes, present = boxes_from_masks(masks)
    for b in range(3):
        for c in range(1, 9):
            ys, xs = torch.nonzero(masks[b] == c, as_tuple=True)
            assert bool(present[b, c - 1]) == (len(ys) > 0)
            if len(ys):
                want = [xs.min() / 6, ys.min() / 7, (xs.max() + 1) / 6, (ys.max() + 1) / 7]
                assert boxes[b, c - 1].tolist() == pytest.approx([float(v) for v in want])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="B×H×W"):
        boxes_from_masks(torch.zeros(4, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        boxes_from_masks(torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match="0..8"):
        boxes_from_masks(torch.full((1, 2, 2), 9))
