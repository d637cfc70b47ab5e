"""The data pages (paper, section 4.1): a prepared dataset's facts, its split beside the paper's, the
class distribution per split (table and seaborn bar plot), the category merge, the refinement's stage
counts, and example images with their masks.

Every function takes a :class:`clothparse.datasets.prepare.Prepared` (``figure_examples``: a store).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clothparse.categories import (
    CCP_EXCLUDED,
    CCP_MERGE,
    CCP_SUIT_POLICY,
    CLASSES,
    CLOTHING,
    imaterialist_category_map,
    overlay,
)
from clothparse.datasets.split import split_distribution
from clothparse.evaluation.paper import tables
from clothparse.masks import classes_present
from clothparse.refine import stage_table
from clothparse.report.common import _cell_size, _clean, _legend, _no_nan

SPLITS = ("train", "valid", "test")


def data_overview(prepared) -> pd.DataFrame:
    """Facts of a prepared dataset: source, variant, store, image counts, what was skipped and why."""
    store = prepared.store
    meta = store.meta
    counts = prepared.splits.value_counts()
    skipped = meta.get("skipped_counts", {})
    rows = [("variant", prepared.variant), ("source folder", str(prepared.source_root)),
            ("data folder (after refinement)", str(prepared.data_root)),
            ("images in the store", len(store)), ("store size (H×W)", "×".join(map(str, store.size))),
            ("store key", str(meta.get("key", ""))[:16]),
            ("skipped by the reader", skipped.get("reader", 0)),
            ("skipped by the store build", skipped.get("store", 0)),
            ("images where a class vanished in the resize", meta.get("classes_lost_in_resize", 0))]
    rows += [(f"{s} images", int(counts.get(s, 0))) for s in SPLITS]
    rows += [("note", n) for n in prepared.notes]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item").astype(str)


def split_table(prepared) -> pd.DataFrame:
    """Split sizes, ours beside the paper's 30,429 / 3,913 / 9,128."""
    paper = tables()["dataset"]["split"]
    counts = prepared.splits.value_counts()
    n, pn = len(prepared.splits), sum(paper.values())
    rows = [{"split": s, "ours": int(counts.get(s, 0)), "ours %": 100 * counts.get(s, 0) / max(n, 1),
             "paper": int(paper[s]), "paper %": 100 * paper[s] / pn} for s in SPLITS]
    return pd.DataFrame(rows).set_index("split")


# --- class distribution ----------------------------------------------------------------------------------
def _distribution(prepared) -> pd.DataFrame:
    """Per split (and ``all``), % of images containing each clothing class (and none), and the count; NaN
    for an empty split."""
    df = split_distribution(list(prepared.store.classes), prepared.splits.to_numpy())
    cols = [c for c in df.columns if c != "count"]
    df[cols] = 100 * df[cols]
    return df


def class_distribution(prepared) -> pd.DataFrame:
    """Per split, % of images containing each clothing class (and none), and the image count."""
    return _no_nan(_distribution(prepared))


def figure_class_distribution(prepared):
    """The class distribution as grouped bars (seaborn): per clothing class (and "none"), the % of images
    of each split that contain it. The split is stratified on these labels, so a class's bars should be
    about level."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = _distribution(prepared).drop(index="all", errors="ignore")
    counts = df.pop("count")
    long = (df.rename(index=lambda s: f"{s} ({counts[s]:,} images)").rename_axis("split").reset_index()
            .melt(id_vars="split", var_name="class", value_name="% of images"))
    fig, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    sns.barplot(data=long, x="class", y="% of images", hue="split", order=[*CLOTHING, "none"], ax=ax,
                palette="colorblind")
    ax.set_xlabel("")
    ax.set_title("share of each split's images that contain the class", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    sns.despine(ax=ax)
    return fig


# --- the merge and the refinement ------------------------------------------------------------------------
def merge_table(prepared) -> pd.DataFrame:
    """How the source's categories map to the 9 classes: the iMaterialist table (from the dataset's
    ``label_descriptions.json``) or, for CCP, the label groups of ``categories.CCP_MERGE``."""
    ld = Path(prepared.source_root) / "label_descriptions.json"
    if ld.is_file():
        return imaterialist_category_map(ld).merge_table().set_index("id")
    rows = [{"merged class": cls, "source labels": ", ".join(names)} for cls, names in CCP_MERGE.items()]
    rows.append({"merged class": "(image excluded)", "source labels": ", ".join(CCP_EXCLUDED)
                 + (", suit" if CCP_SUIT_POLICY == "exclude" else "")})
    rows.append({"merged class": "background", "source labels": "every other label"})
    return pd.DataFrame(rows).set_index("merged class")


def refine_stages(prepared) -> pd.DataFrame:
    """The refinement's stage counts beside the paper's (``refine.stage_table``), without NaN."""
    if prepared.refine_report is None:
        raise ValueError("this prepared dataset was not refined (profile data.refine is off, or a CCP profile)")
    return _no_nan(stage_table(Path(prepared.data_root)))


# --- examples --------------------------------------------------------------------------------------------
def figure_examples(store, n: int = 8, indices: Sequence[int] | None = None, seed: int = 0, ncols: int = 4):
    """``n`` images of a store (random with ``seed``, or ``indices``) with their masks overlaid."""
    import matplotlib.pyplot as plt

    if indices is None:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(len(store), size=min(n, len(store)), replace=False))
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("no image to show")
    ncols = min(ncols, len(indices))
    nrows = -(-len(indices) // ncols)
    cw, ch = _cell_size(store.size)
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(2 * cw * ncols, ch * nrows + 0.8), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        _clean(ax)
    for k, i in enumerate(indices):
        image, mask = np.asarray(store.images[i]), np.asarray(store.masks[i])
        r, c = divmod(k, ncols)
        axes[r, 2 * c].imshow(image)
        axes[r, 2 * c].set_title(str(store.image_ids[i])[:24], fontsize=7)
        axes[r, 2 * c + 1].imshow(overlay(image, mask), interpolation="nearest")
        axes[r, 2 * c + 1].set_title(", ".join(CLASSES[j] for j in classes_present(mask)) or "no clothing",
                                     fontsize=7)
    _legend(fig)
    return fig
