"""What a class-id mask holds, counted once for datasets, reports and the parser: pixels per class, the classes
present and their tight boxes, on small hand-made masks (an empty one and an absent class included)."""
import numpy as np
import torch

from clothparse.categories import NUM_CLASSES
from clothparse.masks import class_counts, classes_present, tight_boxes
from clothparse.models.boxes import boxes_from_masks

# 4×6: top (1) in an L over rows 0-1, one dress (6) pixel at (3, 5), two shoe (7) blobs in row 3
MASK = np.array([[1, 1, 1, 0, 0, 0],
                 [1, 0, 0, 0, 0, 0],
                 [0, 0, 0, 0, 0, 0],
                 [7, 0, 0, 7, 0, 6]], np.uint8)


def test_class_counts_per_class_and_in_chunks():
    expected = np.zeros(NUM_CLASSES, np.int64)
    expected[[0, 1, 6, 7]] = [17, 4, 1, 2]
    assert class_counts(MASK).dtype == np.int64
    np.testing.assert_array_equal(class_counts(MASK), expected)
    np.testing.assert_array_equal(class_counts(MASK, chunk=5), expected)
    np.testing.assert_array_equal(class_counts(np.zeros((0, 0), np.uint8)), np.zeros(NUM_CLASSES, np.int64))
    # uint8 masks are counted by comparisons, others by bincount: the same counts, values ≥ 9 left out
    noisy = np.random.default_rng(0).integers(0, 12, (37, 23))
    reference = np.bincount(noisy.ravel(), minlength=12)[:NUM_CLASSES]
    for mask in (noisy.astype(np.uint8), noisy.astype(np.int32), noisy.astype(np.uint8).T):
        np.testing.assert_array_equal(class_counts(mask, chunk=100), reference)


def test_classes_present_leaves_out_background_absent_and_small_classes():
    assert classes_present(MASK) == (1, 6, 7)
    assert classes_present(MASK, min_pixels=2) == (1, 7)
    assert classes_present(np.zeros((3, 3), np.uint8)) == ()
    assert classes_present(np.zeros((0, 0), np.uint8)) == ()


def test_tight_boxes_in_pixels_max_exclusive():
    assert tight_boxes(MASK, [1, 6, 7]) == {1: (0, 0, 3, 2), 6: (5, 3, 6, 4), 7: (0, 3, 4, 4)}
    assert tight_boxes(MASK, [3]) == {}                  # absent class: no box
    assert tight_boxes(np.zeros((2, 2), np.uint8), [1]) == {}


def test_tight_boxes_are_the_training_targets_in_pixels():
    """The parser's boxes (pixels, one mask) and the BBBranch targets (relative, a batch) follow one rule."""
    boxes, present = boxes_from_masks(torch.from_numpy(MASK)[None].long())
    h, w = MASK.shape
    ours = tight_boxes(MASK, range(1, NUM_CLASSES))
    assert sorted(ours) == [c + 1 for c in np.flatnonzero(present[0].numpy())]
    for c, (x0, y0, x1, y1) in ours.items():
        np.testing.assert_allclose(boxes[0, c - 1].numpy(), [x0 / w, y0 / h, x1 / w, y1 / h], rtol=1e-6)
