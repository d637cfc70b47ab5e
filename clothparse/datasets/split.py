"""Train / valid / test split, stratified on which clothing classes each image contains.

The paper splits 43,470 images into 30,429 / 3,913 / 9,128 (≈ 70 / 9 / 21 %) "so that the clothing
categories distribution would be approximately the same" in each part. We stratify on the multilabel
class presence (8 clothing classes, plus a ninth "none" label for images without any clothing, so
that those spread evenly too) with the iterative stratification of Sechidis et al. (2011), as
implemented by the ``iterative-stratification`` package, applied twice: test out of all images,
then valid out of the rest.

Split sizes (:func:`split_counts`): train ``floor(f_train · n)``, valid ``ceil(f_valid · n)``,
test the rest — each within one image of its fraction, summing to n, and giving the paper's
numbers exactly: for n = 43,470, 30,429 train, 3,913 valid (3,912.3 rounded up), 9,128 test
(9,128.7 rounded down; rounding each to the nearest would give 3,912 / 9,129).
Iterative stratification prefers balance over exact sizes, so after each pass the few surplus
images are moved, one at a time, choosing the image whose labels the receiving part lacks most,
to give exactly these counts.

A split is a file (``image_id,split``), written once and then reused; it is never recomputed
silently (:func:`load_or_create_split`).
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from clothparse.categories import CLOTHING, NUM_CLOTHING

__all__ = ["SPLITS", "PAPER_FRACTIONS", "split_counts", "presence_matrix", "make_split",
           "load_or_create_split", "split_distribution"]

SPLITS: tuple[str, str, str] = ("train", "valid", "test")
#: The paper's fractions (30,429 / 3,913 / 9,128 of 43,470).
PAPER_FRACTIONS: tuple[float, float, float] = (0.70, 0.09, 0.21)


def _ceil(x: float) -> int:
    # Round first so that float noise (0.3 * 43470 = 13041.000000000002) does not add an image.
    return int(math.ceil(round(x, 6)))


def _floor(x: float) -> int:
    return int(math.floor(round(x, 6)))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3:
        raise ValueError(f"fractions must be (train, valid, test), got {fractions!r}")
    if any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions!r} (sum {sum(fr)})")
    return fr  # type: ignore[return-value]


def split_counts(n: int, fractions: Sequence[float] = PAPER_FRACTIONS) -> dict[str, int]:
    """Exact split sizes for ``n`` images (see the module docstring for the rounding rule).

    >>> split_counts(43470)
    {'train': 30429, 'valid': 3913, 'test': 9128}
    """
    f_train, f_valid, f_test = _check_fractions(fractions)
    n = int(n)
    n_train, n_valid = _floor(f_train * n), _ceil(f_valid * n)
    counts = {"train": n_train, "valid": n_valid, "test": max(0, n - n_train - n_valid)}
    counts["train"] = n - counts["valid"] - counts["test"]
    empty = [s for s, f in zip(SPLITS, (f_train, f_valid, f_test)) if f > 0 and counts[s] == 0]
    if empty:
        raise ValueError(f"{n} images are too few for fractions {tuple(fractions)}: "
                         f"split(s) {empty} would be empty ({counts})")
    return counts


def presence_matrix(classes: Sequence[Sequence[int]]) -> np.ndarray:
    """N × 9 bool matrix: columns = the 8 clothing classes (ids 1..8), then "no clothing at all"."""
    y = np.zeros((len(classes), NUM_CLOTHING + 1), dtype=bool)
    for row, cls in enumerate(classes):
        for c in cls:
            c = int(c)
            if not 1 <= c <= NUM_CLOTHING:
                raise ValueError(f"image {row}: class id {c} is not a clothing class (1..{NUM_CLOTHING})")
            y[row, c - 1] = True
    y[:, NUM_CLOTHING] = ~y[:, :NUM_CLOTHING].any(axis=1)
    return y


def _fix_size(take: np.ndarray, rest: np.ndarray, n_take: int, y: np.ndarray,
              rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Move images between ``take`` and ``rest`` until ``len(take) == n_take``.

    Greedy, one image at a time: move the donor image whose labels the receiving part lacks most
    (relative to the overall label shares at its final size), random among equals."""
    surplus = len(take) - n_take
    if surplus == 0:
        return take, rest
    donor, receiver = (take, rest) if surplus > 0 else (rest, take)
    n_receiver = len(receiver) + abs(surplus)
    yf = y.astype(np.float64)
    deficit = yf.mean(axis=0) * n_receiver - yf[receiver].sum(axis=0)
    available = np.ones(len(donor), dtype=bool)
    tiebreak = rng.random_sample(len(donor)) * 1e-6
    moved = []
    for _ in range(abs(surplus)):
        score = yf[donor] @ deficit + tiebreak
        score[~available] = -np.inf
        pick = int(np.argmax(score))
        available[pick] = False
        moved.append(donor[pick])
        deficit -= yf[donor[pick]]
    moved = np.array(moved)
    donor = np.setdiff1d(donor, moved)
    receiver = np.union1d(receiver, moved)
    return (donor, receiver) if surplus > 0 else (receiver, donor)


def _stratified_take(y: np.ndarray, n_take: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Indices (take, rest) with exactly ``n_take`` taken, stratified on the rows of ``y``."""
    n = len(y)
    if n_take == 0:
        return np.array([], dtype=np.int64), np.arange(n)
    if n_take == n:
        return np.arange(n), np.array([], dtype=np.int64)
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_take, random_state=rng)
    rest, take = next(splitter.split(np.zeros(n), y.astype(int)))
    return _fix_size(np.sort(take), np.sort(rest), n_take, y, rng)


def make_split(classes: Sequence[Sequence[int]], fractions: Sequence[float] = PAPER_FRACTIONS,
               seed: int = 0) -> np.ndarray:
    """Assign each image to ``"train"``, ``"valid"`` or ``"test"``; deterministic for a given ``seed``.

    ``classes[i]`` are the clothing class ids (1..8) present in image ``i``. Sizes are exactly
    :func:`split_counts`; the class shares of the three parts are approximately equal.
    """
    y = presence_matrix(classes)
    counts = split_counts(len(y), fractions)
    rng = np.random.RandomState(seed)
    out = np.full(len(y), "train", dtype=object)
    test, rest = _stratified_take(y, counts["test"], rng)
    out[test] = "test"
    valid_in_rest, _ = _stratified_take(y[rest], counts["valid"], rng)
    out[rest[valid_in_rest]] = "valid"
    return out.astype(str)


def load_or_create_split(image_ids: Sequence[str], classes: Sequence[Sequence[int]], path: str | Path,
                         fractions: Sequence[float] = PAPER_FRACTIONS, seed: int = 0) -> pd.Series:
    """The split of ``image_ids`` as a Series (index image_id, values split), stored at ``path``.

    When ``path`` exists it is authoritative: it is read and must list exactly ``image_ids``
    (otherwise ``ValueError`` — a split is never recomputed silently). When it does not exist the
    split is made with :func:`make_split` and written as CSV ``image_id,split``.
    """
    path = Path(path)
    ids = [str(i) for i in image_ids]
    if len(ids) != len(classes):
        raise ValueError(f"{len(ids)} image ids but {len(classes)} class tuples")
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise ValueError(f"duplicate image ids (first: {dup[:3]}); a split needs unique ids")
    if path.exists():
        return _read_split(path, ids)
    splits = make_split(classes, fractions=fractions, seed=seed)
    series = pd.Series(splits, index=pd.Index(ids, name="image_id"), name="split")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    series.to_frame().to_csv(tmp)
    tmp.replace(path)  # atomic: a crash never leaves half a split file behind
    return series


def _read_split(path: Path, ids: list[str]) -> pd.Series:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read split file ({err})") from err
    if list(frame.columns) != ["image_id", "split"]:
        raise ValueError(f"{path}: expected columns image_id,split, got {list(frame.columns)}")
    bad = frame.loc[~frame["split"].isin(SPLITS)]
    if len(bad):
        row = bad.index[0] + 2  # 1-based, after the header
        raise ValueError(f"{path}, line {row}: split {bad['split'].iloc[0]!r} is not one of {SPLITS}")
    dup = frame["image_id"][frame["image_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{path}: image id {dup.iloc[0]!r} appears more than once")
    stored, wanted = set(frame["image_id"]), set(ids)
    if stored != wanted:
        missing, extra = sorted(wanted - stored), sorted(stored - wanted)
        raise ValueError(
            f"{path} does not match the dataset: {len(missing)} dataset image(s) are not in it "
            f"(e.g. {missing[:3]}), {len(extra)} of its image(s) are not in the dataset (e.g. {extra[:3]}). "
            f"The split file is kept as the record of earlier runs and never recomputed silently; "
            f"to make a new split for this dataset, delete or move {path} (or point to another split path).")
    series = frame.set_index("image_id")["split"]
    return series.loc[ids].rename("split")


def split_distribution(classes: Sequence[Sequence[int]], splits: Sequence[str] | pd.Series,
                       include_all: bool = True) -> pd.DataFrame:
    """Per split: share of images containing each clothing class (and with none), plus the image count.

    Rows ``train``, ``valid``, ``test`` (and ``all`` when ``include_all``); columns the 8 clothing
    class names, ``none`` (no clothing), ``count``.
    """
    y = presence_matrix(classes)
    s = np.asarray(splits, dtype=str)
    if len(s) != len(y):
        raise ValueError(f"{len(y)} class tuples but {len(s)} split labels")
    cols = list(CLOTHING) + ["none"]
    rows, names = [], []
    for name in SPLITS + (("all",) if include_all else ()):
        sel = np.ones(len(y), bool) if name == "all" else s == name
        n = int(sel.sum())
        share = y[sel].mean(axis=0) if n else np.full(len(cols), np.nan)
        rows.append(list(share) + [n])
        names.append(name)
    frame = pd.DataFrame(rows, index=pd.Index(names, name="split"), columns=cols + ["count"])
    frame["count"] = frame["count"].astype(int)
    return frame
