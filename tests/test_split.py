import numpy as np
import pandas as pd
import pytest

from clothparse.categories import CLOTHING
from clothparse.datasets.split import (
    load_or_create_split,
    make_split,
    presence_matrix,
    split_counts,
    split_distribution,
)


def _random_classes(n, seed=0):
    """Class presence like a clothing set: common tops and shoes, rare shorts, ~6 % with nothing."""
    rng = np.random.default_rng(seed)
    p = np.array([0.45, 0.30, 0.25, 0.05, 0.12, 0.30, 0.50, 0.30])
    y = rng.random((n, 8)) < p
    y[rng.random(n) < 0.06] = False
    return [tuple(int(c) + 1 for c in np.flatnonzero(row)) for row in y]


def test_split_counts_reproduce_the_paper():
    assert split_counts(43470) == {"train": 30429, "valid": 3913, "test": 9128}


@pytest.mark.parametrize("n", [10, 11, 99, 1000, 1234])
def test_split_counts_sum_to_n_and_follow_fractions(n):
    c = split_counts(n)
    assert sum(c.values()) == n
    for name, f in zip(("train", "valid", "test"), (0.70, 0.09, 0.21)):
        assert abs(c[name] - f * n) < 1.0 + 1e-9


def test_split_counts_rejects_too_few_images_and_bad_fractions():
    with pytest.raises(ValueError, match="too few"):
        split_counts(3)
    with pytest.raises(ValueError, match="sum to 1"):
        split_counts(100, (0.7, 0.2, 0.2))


def test_make_split_exact_sizes_deterministic_and_stratified():
    classes = _random_classes(2000)
    s = make_split(classes, seed=0)
    expected = split_counts(2000)
    assert {k: int((s == k).sum()) for k in expected} == expected
    assert (make_split(classes, seed=0) == s).all()
    assert (make_split(classes, seed=1) != s).any()

    dist = split_distribution(classes, s)
    overall = dist.loc["all", list(CLOTHING) + ["none"]]
    for name in ("train", "valid", "test"):
        gap = (dist.loc[name, list(CLOTHING) + ["none"]] - overall).abs().max()
        assert gap < 0.02, f"{name} class shares deviate by {gap:.3f}\n{dist}"


def test_images_without_clothing_are_spread_over_all_splits():
    classes = [()] * 100 + [(1,)] * 900
    s = make_split(classes, seed=3)
    none = np.array([len(c) == 0 for c in classes])
    for name, f in (("train", 0.70), ("valid", 0.09), ("test", 0.21)):
        assert abs((none & (s == name)).sum() - 100 * f) <= 2


def test_presence_matrix_rejects_background_or_unknown_ids():
    assert presence_matrix([(1, 8), ()]).tolist() == [
        [True] + [False] * 6 + [True, False], [False] * 8 + [True]]
    with pytest.raises(ValueError, match="image 1: class id 9"):
        presence_matrix([(1,), (9,)])
    with pytest.raises(ValueError, match="class id 0"):
        presence_matrix([(0,)])


def test_split_distribution_values():
    classes = [(1,), (1, 2), (), (3,)]
    dist = split_distribution(classes, ["train", "train", "test", "valid"])
    assert dist.loc["train", "top"] == 1.0
    assert dist.loc["train", "overtop"] == 0.5
    assert dist.loc["test", "none"] == 1.0
    assert dist.loc["valid", "pants"] == 1.0
    assert dist["count"].to_dict() == {"train": 2, "valid": 1, "test": 1, "all": 4}
    assert dist.loc["all", "top"] == 0.5


def test_load_or_create_split_writes_then_reuses_the_file(tmp_path):
    classes = _random_classes(200, seed=1)
    ids = [f"img{i:04d}.jpg" for i in range(200)]
    path = tmp_path / "splits" / "split.csv"
    first = load_or_create_split(ids, classes, path, seed=0)
    assert path.exists()
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["image_id", "split"]
    assert first.loc[ids].tolist() == make_split(classes, seed=0).tolist()

    # The file is authoritative: an edit is honoured, not overwritten by a recomputation.
    frame.loc[0, "split"] = "test" if frame.loc[0, "split"] != "test" else "train"
    frame.to_csv(path, index=False)
    again = load_or_create_split(ids[::-1], classes[::-1], path, seed=0)
    assert again.index.tolist() == ids[::-1]
    assert again[frame.loc[0, "image_id"]] == frame.loc[0, "split"]


def test_load_or_create_split_refuses_a_file_for_other_images(tmp_path):
    classes = _random_classes(50, seed=2)
    ids = [f"a{i}" for i in range(50)]
    path = tmp_path / "split.csv"
    load_or_create_split(ids, classes, path)
    before = path.read_text()
    with pytest.raises(ValueError, match=r"1 dataset image\(s\) are not in it.*delete or move"):
        load_or_create_split(ids[:-1] + ["new"], classes, path)
    assert path.read_text() == before


def test_load_or_create_split_reports_bad_rows(tmp_path):
    path = tmp_path / "split.csv"
    path.write_text("image_id,split\na,train\nb,holdout\n")
    with pytest.raises(ValueError, match="line 3: split 'holdout'"):
        load_or_create_split(["a", "b"], [(1,), (2,)], path)
    with pytest.raises(ValueError, match="duplicate image ids"):
        load_or_create_split(["a", "a"], [(1,), (2,)], tmp_path / "other.csv")
