"""Kaggle RLE: known answers, round trips on random masks, and every malformed case."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clothparse import rle

# A 3×2 mask (H=3, W=2). Column-major, 1-indexed: column 0 is pixels 1..3, column 1 is pixels 4..6.
#   [[1, 0],
#    [1, 1],
#    [0, 1]]   -> flat (F order) 1 1 0 | 0 1 1 -> runs (1, 2) and (5, 2)
MASK_3x2 = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)


def test_known_answer_encode():
    assert rle.encode(MASK_3x2) == "1 2 5 2"


def test_known_answer_decode():
    np.testing.assert_array_equal(rle.decode("1 2 5 2", 3, 2), MASK_3x2)
    # "1 3" is the whole first column (column-major), not the first row.
    np.testing.assert_array_equal(rle.decode("1 3", 3, 2), [[1, 0], [1, 0], [1, 0]])
    # A run may wrap from the bottom of one column into the top of the next.
    np.testing.assert_array_equal(rle.decode("3 2", 3, 2), [[0, 1], [0, 0], [1, 0]])


def test_empty_and_full():
    assert rle.encode(np.zeros((3, 2), bool)) == ""
    assert rle.encode(np.ones((3, 2), bool)) == "1 6"
    assert not rle.decode("", 3, 2).any()
    assert not rle.decode(float("nan"), 3, 2).any()  # pandas reads an empty cell as NaN
    assert rle.decode("1 6", 3, 2).all()


def test_touching_runs_are_valid():
    # Not canonical (encode would merge them) but well-formed: run 0 covers pixels 1..2, run 1 pixels 3..4.
    np.testing.assert_array_equal(rle.decode("1 2 3 2", 3, 2), [[1, 1], [1, 0], [1, 0]])
    assert rle.encode(rle.decode("1 2 3 2", 3, 2)) == "1 4"


def test_whitespace_is_lenient():
    np.testing.assert_array_equal(rle.decode("  1 2\t5  2\n", 3, 2), MASK_3x2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 24).flatmap(
    lambda h: st.integers(1, 24).flatmap(lambda w: arrays(bool, (h, w)))))
def test_round_trip(mask):
    text = rle.encode(mask)
    decoded = rle.decode(text, *mask.shape)
    assert decoded.dtype == bool and decoded.shape == mask.shape
    np.testing.assert_array_equal(decoded, mask)
    # Canonical form: starts strictly increasing with gaps, so re-encoding is the identity.
    assert rle.encode(decoded) == text
    values = [int(v) for v in text.split()]
    assert sum(values[1::2]) == int(mask.sum())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20).flatmap(
    lambda h: st.integers(1, 20).flatmap(lambda w: arrays(np.uint8, (h, w), elements=st.integers(0, 3)))))
def test_encode_classes_is_encode_per_class_in_one_pass(mask):
    runs = rle.encode_classes(mask, [0, 1, 2, 3, 7])
    for value, (text, pixels) in runs.items():
        assert text == rle.encode(mask == value) and pixels == int((mask == value).sum())
    assert runs[7] == ("", 0)
    assert rle.encode_classes(np.zeros((0, 3), np.uint8), [1]) == {1: ("", 0)}
    with pytest.raises(ValueError, match="2-D"):
        rle.encode_classes(mask[None], [1])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_decode_matches_naive_loop(h, w, data):
    # Random valid run lists, decoded by the obvious loop over a column-major buffer.
    n = h * w
    cuts = sorted(data.draw(st.sets(st.integers(0, n), max_size=8)))
    runs = [(a, b) for a, b in zip(cuts[0::2], cuts[1::2]) if b > a]
    text = " ".join(f"{a + 1} {b - a}" for a, b in runs)
    flat = np.zeros(n, bool)
    for a, b in runs:
        flat[a:b] = True
    np.testing.assert_array_equal(rle.decode(text, h, w), flat.reshape((h, w), order="F"))


@pytest.mark.parametrize("text, message", [
    ("1 2 5", "odd number of tokens (3)"),
    ("1 a", "token 'a' is not an integer"),
    ("1.5 2", "token '1.5' is not an integer"),
    ("1_0 2", "token '1_0' is not an integer"),
    ("+-3 1", "token '+-3' is not an integer"),
    ("1 99999999999999999999", "token '99999999999999999999' is too large"),
    ("0 2", "run 0 starts at 0 (< 1"),
    ("-1 2", "run 0 starts at -1 (< 1"),
    ("1 0", "run 0 has length 0 (< 1)"),
    ("1 -2", "run 0 has length -2 (< 1)"),
    ("5 3", "run 0 (start 5, length 3) runs past the end of the mask (6 pixels)"),
    ("1 1 7 1", "run 1 (start 7, length 1) runs past the end"),
    ("1 9223372036854775807", "runs past the end"),
    ("4 1 1 1", "not sorted: run 1 starts at 1 after 4"),
    ("3 1 3 1", "not sorted: run 1 starts at 3 after 3"),
    ("1 3 2 2", "run 1 (start 2) overlaps run 0 (start 1, length 3)"),
])
def test_malformed_raises_with_message(text, message):
    with pytest.raises(ValueError) as err:
        rle.decode(text, 3, 2)
    assert message in str(err.value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="must be a string"):
        rle.parse_runs(12, 6)
    with pytest.raises(ValueError, match="mask size must be positive"):
        rle.decode("1 1", 0, 2)
    with pytest.raises(ValueError, match="must be 2-D"):
        rle.encode(np.zeros((2, 2, 2), bool))


def test_parse_runs_is_zero_based():
    starts, lengths = rle.parse_runs("1 2 5 2", 6)
    assert starts.tolist() == [0, 4] and lengths.tolist() == [2, 2]
