"""clothparse.report on small run folders written with the real metric, loss, store and run-folder code.

The run folders hold what ``evaluate.evaluate`` writes (metrics.json from ``iou_summary`` of a real
``ConfusionMatrix``, confusion_*.npy, per_image.csv with ``CompoundLoss.per_image`` losses,
predictions.npz, class scores from ``multilabel_scores``) for predictions made by corrupting the ground
truth of a tiny store — no model is trained, so the whole file runs in a few seconds.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from fake_runs import DRESS, N_IMAGES, H, TinyDataset, W, make_fake_runs, seeded_runs, write_fake_run  # noqa: E402

from clothparse import report, runs  # noqa: E402
from clothparse.categories import CLASSES, CLOTHING  # noqa: E402
from clothparse.datasets.prepare import Prepared  # noqa: E402
from clothparse.datasets.store import build_store  # noqa: E402
from clothparse.evaluation.metrics import (  # noqa: E402
    column_percent,
    row_percent,
)
from clothparse.evaluation.paper import table2_row, tables  # noqa: E402
from clothparse.profiles import load_profile  # noqa: E402
from clothparse.report import tables as report_tables  # noqa: E402
from clothparse.report.confusion_matrices import _heatmap, _matrix_frame  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_fake_runs(tmp_path_factory.mktemp("report"))


@pytest.fixture
def papers_data(monkeypatch):
    """The fake runs' tables as on the paper's data (iMaterialist), where ours − paper rows are shown."""
    monkeypatch.setattr(report_tables, "compares_with_paper", lambda profile: True)


def _assert_no_nan(df: pd.DataFrame):
    assert not df.isna().to_numpy().any()
    assert "nan" not in df.to_html().lower()


# --- Tables 1, 2, 5 -------------------------------------------------------------------------------------------
def test_table2_values_beside_the_paper(env, papers_data):
    df = report.table2(env["profile"], models=["unet", "extended_unet", "fpn"])
    _assert_no_nan(df)
    assert df.attrs["missing"] == ["fpn"]
    assert list(df.columns) == list(report.IOU_COLUMNS)
    assert list(df.index.get_level_values(0).unique()) == ["Plain U-Net (unet)", "Our model (extended_unet)"]
    s = env["runs"][("extended_unet", "refined")]["metrics"]["variants"]["plain"]
    paper = table2_row("extended_unet")
    ours, pap, diff = (df.loc[("Our model (extended_unet)", src)] for src in report.SOURCES)
    assert ours["IoU excl. bg"] == pytest.approx(s["pooled_excl_bg"])
    assert ours["IoU Mask"] == pytest.approx(s["mask"])
    assert ours["Dress"] == pytest.approx(s["per_class"]["dress"])
    assert ours[report.MIOU] == pytest.approx(s["mean_excl_bg"])
    assert pap["IoU overall"] == paper["iou_overall"] and pap["Bag"] == paper["per_class"][8]
    assert pap[report.MIOU] == pytest.approx(np.mean(paper["per_class"][1:]))
    for col in df.columns:
        assert diff[col] == pytest.approx(ours[col] - pap[col])


def test_table2_run_and_selected_runs(env):
    run = env["runs"][("extended_unet", "refined")]
    one = report.table2_run(run["run_dir"])
    full = report.table2(env["profile"])
    pd.testing.assert_frame_equal(one, full.loc[["Our model (extended_unet)"]])
    sel = report.selected_runs(env["profile"])
    assert list(sel["model"]) == ["unet", "extended_unet"] and (sel["variant"] == "refined").all()
    assert sel["run_dir"].iloc[1] == run["run_dir"]


def test_table2_extra_model_has_no_paper_rows(env, tmp_path):
    profile = load_profile(env["profile"], {"runs_dir": str(tmp_path / "runs"), "models": ["smp_unet", "unet"]})
    write_fake_run(profile, "smp_unet", "refined", env["store"], env["test_rows"], seed=5, classbranch=False)
    df = report.table2(profile)
    assert df.attrs["missing"] == ["unet"]
    assert list(df.index) == [("smp U-Net (not in the paper)", "ours")]
    _assert_no_nan(df)


def test_table1_base_vs_refined(env):
    df = report.table1(env["profile"])
    _assert_no_nan(df)
    assert list(df.index.get_level_values(0).unique()) == ["Base", "Refined"]
    base = env["runs"][("unet", "base")]["metrics"]["variants"]["plain"]
    assert df.loc[("Base", "ours"), "IoU excl. bg"] == pytest.approx(base["pooled_excl_bg"])
    assert df.loc[("Base", "paper"), "IoU excl. bg"] == tables()["table1_dataset_refinement"]["Base"]["iou_excl_bg"]


def test_tables_1_and_2_show_the_mean_and_spread_over_seeds(env, tmp_path, papers_data):
    profile, made = seeded_runs(env, tmp_path, [0, 1], {("unet", "refined"): [0, 1], ("unet", "base"): [0, 1],
                                                          ("extended_unet", "refined"): [1]})
    df = report.table2(profile)
    _assert_no_nan(df)
    unet, ours_model = "Plain U-Net (unet)", "Our model (extended_unet)"
    assert df.attrs["n_seeds"] == {unet: 2, ours_model: 1}
    assert list(df.loc[unet].index) == ["ours", report.SEED_SD, "paper", "ours − paper"]
    assert report.SEED_SD not in df.loc[ours_model].index  # one seed: the rows of today
    summaries = [made[("unet", "refined", s)]["metrics"]["variants"]["plain"] for s in (0, 1)]
    for col, get in (("IoU excl. bg", lambda m: m["pooled_excl_bg"]), ("Dress", lambda m: m["per_class"]["dress"]),
                     (report.MIOU, lambda m: m["mean_excl_bg"])):
        a, b = (get(m) for m in summaries)
        assert a != b
        assert df.loc[(unet, "ours"), col] == pytest.approx((a + b) / 2)
        assert df.loc[(unet, report.SEED_SD), col] == pytest.approx(abs(a - b) / np.sqrt(2))  # ddof=1
        assert df.loc[(unet, "ours − paper"), col] == pytest.approx((a + b) / 2 - df.loc[(unet, "paper"), col])
    one = report.table2_run(made[("extended_unet", "refined", 1)]["run_dir"])
    pd.testing.assert_frame_equal(one, df.loc[[ours_model]])
    t1 = report.table1(profile)
    _assert_no_nan(t1)
    assert t1.attrs["n_seeds"] == {"Base": 2, "Refined": 2}
    assert list(t1.index) == [(d, src) for d in ("Base", "Refined")
                              for src in ("ours", report.SEED_SD, "paper", "ours − paper")]
    base = [made[("unet", "base", s)]["metrics"]["variants"]["plain"]["pooled_excl_bg"] for s in (0, 1)]
    assert t1.loc[("Base", "ours"), "IoU excl. bg"] == pytest.approx(np.mean(base))
    assert t1.loc[("Base", report.SEED_SD), "IoU excl. bg"] == pytest.approx(np.std(base, ddof=1))
    # a one-seed profile's tables are unchanged by the seeds mechanism
    assert report.table1(env["profile"]).attrs["n_seeds"] == {"Base": 1, "Refined": 1}
    assert report.SEED_SD not in report.table2(env["profile"]).index.get_level_values(1)


def test_table5_injection_rows(env, papers_data):
    run = env["runs"][("extended_unet", "refined")]
    df = report.table5(run["run_dir"])
    _assert_no_nan(df)
    settings = list(df.index.get_level_values(0).unique())
    assert settings[:2] == ["Without GT", "With GT"] and len(settings) == 4
    # the paper tabulates only the first two settings
    assert [s for s, src in df.index if src == "paper"] == ["Without GT", "With GT"]
    gt = run["metrics"]["variants"]["gt"]
    assert df.loc[("With GT", "ours"), "IoU ex. bg"] == pytest.approx(gt["pooled_excl_bg"])
    assert df.loc[("With GT", "paper"), "IoU ex. bg"] == 87.37
    assert df.loc[("With GT", "ours − paper"), "Top"] == pytest.approx(gt["per_class"]["top"] - 87.62)


def test_on_synthetic_data_ours_stands_beside_the_paper_without_a_difference(env):
    run = env["runs"][("extended_unet", "refined")]["run_dir"]
    assert env["profile"].data.kind == "synthetic" and not report.compares_with_paper(env["profile"])
    for df in (report.table2(env["profile"]), report.table1(env["profile"]), report.table2_run(run),
               report.table5(run)):
        _assert_no_nan(df)
        assert report.DIFF not in df.index.get_level_values(-1) and "paper" in df.index.get_level_values(-1)
    assert list(report.table4(run).index) == ["ours", "paper"]
    note = report.paper_comparison_note(env["profile"])
    # names the Claims page without a link: Sphinx leaves links in outputs unresolved (a dead .ipynb href)
    assert "synthetic" in note and "Claims page" in note and "](" not in note and note.count(". ") == 0


def test_only_the_papers_data_is_compared_by_difference(env):
    assert report.compares_with_paper(load_profile("paper"))
    assert report.paper_comparison_note(load_profile("paper")) == ""
    for name in ("ccp", "default"):
        assert not report.compares_with_paper(load_profile(name))
        assert "Claims" in report.paper_comparison_note(load_profile(name))


def test_rounded_keeps_dashes(env):
    df = report.table2(env["profile"], models=["unet"])
    r = report.rounded(df)
    assert r.shape == df.shape
    v = r.loc[("Plain U-Net (unet)", "ours"), "Top"]
    assert v == round(df.loc[("Plain U-Net (unet)", "ours"), "Top"], 2)
    mixed = pd.DataFrame({"a": [1.23456, report.MISSING]}, dtype=object)
    assert report.rounded(mixed)["a"].tolist() == [1.23, report.MISSING]


# --- Table 3 ---------------------------------------------------------------------------------------------------
def test_table3_matrices_and_figures(env):
    run = env["runs"][("extended_unet", "refined")]
    rows, cols = report.table3(run["run_dir"])
    cm = np.load(run["run"].evaluation("test").confusion_path("plain"))
    assert rows.shape == cols.shape == (9, 9)
    np.testing.assert_allclose(rows.to_numpy(float), row_percent(cm))
    np.testing.assert_allclose(cols.to_numpy(float), column_percent(cm))
    np.testing.assert_allclose(rows.to_numpy(float).sum(axis=1), 100)
    diag = report.table3_diagonal(run["run_dir"])
    assert diag.loc["dress", ("row % (recall)", "ours")] == pytest.approx(row_percent(cm)[DRESS, DRESS])
    assert diag.loc["skirt", ("row % (recall)", "paper")] == 65.08
    top = report.table3_top_confusions(run["run_dir"], k=3)
    assert len(top) == 3 and top.iloc[0, 2] >= top.iloc[1, 2] >= top.iloc[2, 2]
    # a RunDir serves as well as its path
    pd.testing.assert_frame_equal(report.table3(run["run"])[0], rows)


def test_confusion_heatmaps_share_one_colour_scale(env):
    run = env["runs"][("extended_unet", "refined")]
    fig = report.figure_confusion(run["run_dir"])
    heatmaps, colourbar = fig.axes[:4], fig.axes[4:]
    assert len(colourbar) == 1 and heatmaps[2].get_title().startswith("paper")
    for ax in heatmaps:
        mesh = ax.collections[0]
        assert (mesh.norm.vmin, mesh.norm.vmax) == (0.0, 100.0) and mesh.get_cmap().name == "Blues"
    # every cell annotated: ours has no empty class here, the paper's matrix is full
    assert len(heatmaps[0].texts) == len(heatmaps[2].texts) == 81
    assert heatmaps[2].texts[0].get_text() == "98.1"   # the paper's bg → bg, row %
    plt.close(fig)
    fig = report.figure_paper_confusion()
    assert len(fig.axes) == 3
    plt.close(fig)


def test_table3_shows_dash_for_a_class_without_pixels(tmp_path, env):
    cm = np.zeros((9, 9), np.int64)
    cm[0, 0], cm[1, 1], cm[1, 0] = 50, 30, 20
    df = _matrix_frame(row_percent(cm))
    assert df.loc["top", "bg"] == 40.0 and df.loc["bag", "bag"] == report.MISSING
    # the heatmap leaves such cells blank instead of printing "nan"
    fig, ax = plt.subplots()
    _heatmap(ax, row_percent(cm), "one class")
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 2 * 9 and "nan" not in texts and {"100.0", "40.0", "60.0"} <= set(texts)
    plt.close(fig)


# --- Table 4 ---------------------------------------------------------------------------------------------------
def test_table4_classbranch(env, papers_data):
    run = env["runs"][("extended_unet", "refined")]
    cb = run["metrics"]["classbranch"]
    df = report.table4(run["run_dir"])
    _assert_no_nan(df)
    assert list(df.index) == list(report.SOURCES)
    assert df.loc["ours", "F1"] == pytest.approx(cb["f1"]["macro"])
    assert df.loc["ours", "% of images"] == pytest.approx(cb["exact_match"])
    assert df.loc["paper", "Skirt"] == 93.22
    assert df.loc["ours − paper", "Bag"] == pytest.approx(cb["per_class_accuracy"]["bag"] - 92.58)
    av = report.table4_averages(run["run_dir"])
    assert av.loc["F2", "samples"] == pytest.approx(cb["f2"]["samples"]) and av.loc["F1", "paper"] == 87.14
    assert report.has_classbranch(run["run_dir"])
    plain_unet = env["runs"][("unet", "refined")]["run_dir"]
    assert not report.has_classbranch(plain_unet)
    with pytest.raises(ValueError, match="no ClassBranch"):
        report.table4(plain_unet)


# --- Figures 5 and 6 ----------------------------------------------------------------------------------------------
def test_figure_no_dress_picks_dressless_images_with_dress_predicted(env):
    run = env["runs"][("extended_unet", "refined")]
    fig = report.figure_no_dress(run["run_dir"], env["store"], n=2)
    assert len(fig.axes) == 8
    titles = [fig.axes[i].get_title() for i in range(len(fig.axes)) if fig.axes[i].get_title()]
    # the two images the fake model painted a dress on, the larger patch first, and the prior removes it
    gt, plain = run["gt"], run["preds"]["plain"]
    no_dress = [k for k in range(len(gt)) if not (gt[k] == DRESS).any()]
    want = sorted(no_dress[:2], key=lambda k: -(plain[k] == DRESS).sum())
    ids = [env["store"].image_ids[env["test_rows"][k]] for k in want]
    assert [t.split("\n")[0] for t in titles] == ids
    assert titles[0].endswith(f"dress px {(plain[want[0]] == DRESS).sum()} → 0")
    plt.close(fig)


def test_loss_sorted_selection_and_figure(env):
    run = env["runs"][("extended_unet", "refined")]
    sel = report.loss_sorted_selection(run["run_dir"], env["store"], n_per_row=2)
    loss = np.sort(run["loss"])
    hi = sel[sel["group"] == "highest loss"]["loss"].to_numpy()
    lo = sel[sel["group"] == "lowest loss"]["loss"].to_numpy()
    np.testing.assert_allclose(hi, loss[::-1][:2], rtol=1e-6)
    np.testing.assert_allclose(lo, loss[:2], rtol=1e-6)
    fails = sel[sel["group"] == "failure cases"]
    # the groups are disjoint: 8 images = 2 highest + 2 middle + 2 lowest, failure cases from the other 2
    assert sel["row"].is_unique and len(sel[sel["group"] != "failure cases"]) == 6
    middle = sel[sel["group"] == "middle loss"]["loss"].to_numpy()
    np.testing.assert_allclose(middle, loss[::-1][3:5], rtol=1e-6)
    # every failure case's listed mismatch is real: +dress on a dress-free ground truth, for instance
    for r in fails.itertuples():
        k = list(env["test_rows"]).index(r.row)
        for token in r.mismatch.split():
            c = CLASSES.index(token[1:])
            in_gt = (run["gt"][k] == c).any()
            assert (token[0] == "+") != bool(in_gt)
    assert len(fails) >= 1
    fig = report.figure_loss_sorted(run["run_dir"], env["store"], n_per_row=2)
    assert len(fig.axes) == 8
    plt.close(fig)


def test_figures_refuse_a_store_of_other_data(env, tmp_path):
    other = build_store(TinyDataset(seed=1), tmp_path / "stores", size=(H, W), workers=0, progress=False,
                        source="other")
    with pytest.raises(ValueError, match="evaluated on store"):
        report.figure_no_dress(env["runs"][("unet", "refined")]["run_dir"], other)


def test_run_store_opens_the_evaluation_store(env):
    store = report.run_store(env["runs"][("unet", "refined")]["run_dir"])
    assert store.key == env["store"].key


# --- history, provenance, consistency ------------------------------------------------------------------------------
def test_figure_history_single_and_several(env):
    run_dir = env["runs"][("unet", "refined")]["run_dir"]
    fig = report.figure_history(run_dir)
    assert len(fig.axes) == 3
    iou_line = fig.axes[2].get_lines()[0]
    np.testing.assert_allclose(iou_line.get_ydata(), [20, 30, 40])
    # the phase boundary (between epoch 1 and 2) is marked in every panel
    assert any(np.allclose(line.get_xdata(), 1.5) for line in fig.axes[0].get_lines())
    plt.close(fig)
    fig = report.figure_history(report.find_runs(env["profile"]))
    assert len(fig.axes) == 2 and len(fig.axes[1].get_legend().get_texts()) == 3
    plt.close(fig)


def test_history_table_and_run_overview(env):
    run = env["runs"][("unet", "refined")]
    h = report.history_table(run["run_dir"])
    _assert_no_nan(h)
    assert h["valid IoU excl. bg (pooled, %)"].tolist() == [20.0, 30.0, 40.0]
    o = report.run_overview(run["run_dir"])
    _assert_no_nan(o)
    assert o.loc["model", "value"] == "unet" and o.loc["train time (s)", "value"] == 6.0
    assert o.loc["valid IoU Mask", "value"] == pytest.approx(run["metrics"]["variants"]["gt"]["mask"])
    assert o.loc["encoder weights", "value"] == "random"


def test_provenance_table(env):
    df = report.provenance_table(env["profile"])
    _assert_no_nan(df)
    assert len(df) == 3
    assert set(df["commit"]) == {"abc123"} and (df["train time (s)"] == 6.0).all() and (df["epochs"] == 3).all()


def test_consistency_table_is_the_papers_check():
    df = report.consistency_table()
    _assert_no_nan(df)
    assert abs(df.loc["IoU excl. bg (pooled)", "difference"]) < 0.2


# --- data -----------------------------------------------------------------------------------------------------------
def test_data_tables_and_examples(env):
    prepared = env["prepared"]
    dist = report.class_distribution(prepared)
    assert dist.loc["all", "count"] == N_IMAGES and dist.loc["test", "count"] == 8
    assert dist.loc["all", "dress"] == pytest.approx(100 * 8 / N_IMAGES)
    sp = report.split_table(prepared)
    assert sp.loc["test", "ours"] == 8 and sp.loc["test", "paper"] == 9128
    over = report.data_overview(prepared)
    assert over.loc["images in the store", "value"] == str(N_IMAGES)
    assert over.loc["store size (H×W)", "value"] == f"{H}×{W}"
    fig = report.figure_examples(env["store"], n=4, ncols=2)
    assert len(fig.axes) == 8
    plt.close(fig)
    fig = report.figure_class_distribution(prepared)
    bars = [b for b in fig.axes[0].patches if b.get_height() > 0]
    # one bar per split and class present in it; their heights are the table's shares
    assert max(b.get_height() for b in bars) == pytest.approx(dist.drop(index="all")[list(CLOTHING)].max().max())
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "train (12 images)", "valid (4 images)", "test (8 images)"]
    plt.close(fig)


def test_merge_tables():
    from pathlib import Path

    ld = Path(__file__).resolve().parents[2] / "shared" / "data" / "imaterialist2019"
    if not (ld / "label_descriptions.json").is_file():
        pytest.skip(f"{ld}/label_descriptions.json not present")
    im = report.merge_table(Prepared("base", ld, ld, None, pd.Series(dtype=str)))
    assert im.loc[im["category"] == "coat", "merged class"].item() == "overtop"
    assert im.loc[im["category"] == "jumpsuit", "merged class"].item() == "(image excluded)"
    ccp = report.merge_table(Prepared("base", Path("/nonexistent"), Path("/nonexistent"), None, pd.Series(dtype=str)))
    assert "jeans" in ccp.loc["pants", "source labels"]


# --- architecture (Figure 1) --------------------------------------------------------------------------------------
def test_trace_and_architecture_figure_of_the_extended_unet():
    torch.manual_seed(0)
    from clothparse.models import build_model

    model = build_model("extended_unet", input_size=(64, 64))
    recs, edges = report.trace_model(model, (64, 64))
    names = [r["name"] for r in recs]
    shape = {r["name"]: r["shape"] for r in recs}
    assert shape["class_branch"] == (8,) and shape["box_branch"] == (32,) and shape["head"] == (9, 64, 64)
    # both branches read the encoder's output; each decoder block gets a skip from the encoder
    deepest = names.index("encoder.7")
    assert (deepest, names.index("class_branch")) in edges and (deepest, names.index("box_branch")) in edges
    for k in range(4):
        block = names.index(f"blocks.{k}")
        assert any(names[i].startswith("encoder.") and i != deepest for i, j in edges if j == block)
    assert sum(r["params"] for r in recs) == sum(p.numel() for p in model.parameters())
    table = report.architecture_table(model, (64, 64))
    assert list(table["module"]) == names and table.loc[table["module"] == "head", "output (C×H×W)"].item() == "9×64×64"
    fig = report.architecture_figure(model, (64, 64))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("class_branch\nClassBranch") for t in texts)
    plt.close(fig)


def test_architecture_follows_the_encoder():
    """Figure 1 and the part table of a model built by name use ``encoder_name`` (here a timm EfficientNet-Lite,
    whose body is conv_stem, bn1 and the stages); long class names are wrapped inside their boxes."""
    table = report.architecture_table("extended_unet", (64, 64), encoder_name="tf_efficientnet_lite0")
    types = dict(zip(table["module"], table["type"]))
    assert types["encoder.0"] == "Conv2dSame" and types["encoder.3"] == "2× InvertedResidual"
    assert table.loc[table["module"] == "head", "output (C×H×W)"].item() == "9×64×64"
    fig = report.architecture_figure("extended_unet", (64, 64), encoder_name="tf_efficientnet_lite0")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "tf_efficientnet_lite0" in fig.axes[0].get_title()
    assert any(t.startswith("enc.3\n2× Inverted\nResidual") for t in texts)
    assert all(len(line) <= 14 for t in texts for line in t.split("\n")[1:-1])   # the type lines fit the box
    plt.close(fig)


# --- the package's surface ----------------------------------------------------------------------------------------
def test_public_names_and_shared_helpers(env):
    from clothparse import categories

    assert all(hasattr(report, name) for name in report.__all__)
    assert report.overlay is categories.overlay
    assert report.find_runs is runs.find_runs and report.select_run is runs.select_run
    assert report.main_variant(env["profile"]) == "refined"
    assert report.main_variant(load_profile(env["profile"], {"data.refine": False})) == "base"
    run = env["runs"][("unet", "refined")]
    assert report.eval_metrics(run["run"]) == run["metrics"]
    assert report.model_label("extended_unet") == "Our model (extended_unet)"


def test_grouped_table_shows_one_table_per_column_group_and_keeps_its_data():
    from clothparse.report.common import IOU_GROUPS

    df = pd.DataFrame(np.arange(26, dtype=float).reshape(2, 13) + 0.123, columns=list(report.IOU_COLUMNS))
    df.attrs["missing"] = ["fpn"]
    g = report.rounded(report.grouped(df, IOU_GROUPS))
    assert isinstance(g, report.GroupedTable) and g.attrs["missing"] == ["fpn"]   # survives rounding
    pd.testing.assert_frame_equal(pd.DataFrame(g), report.rounded(df))
    html = g._repr_html_()
    assert html.count("<table") == 2 and "IoU per class" in html
    first, second = html.split("IoU per class")
    assert "IoU excl. bg" in first and "Top" not in first and "Top" in second and "IoU Mask" not in second
    # columns in no group get a table of their own; a frame without groups is one table
    assert report.grouped(df.assign(extra=1.0), IOU_GROUPS)._repr_html_().count("<table") == 3
    assert report.GroupedTable(df)._repr_html_().count("<table") == 1


def test_the_peers_numbers_of_a_run_come_from_its_confusion_matrix(env):
    run = env["runs"][("unet", "refined")]
    s = run["metrics"]["variants"]["plain"]
    df = report.peer_metrics(run["run_dir"])
    _assert_no_nan(df)
    assert list(df.index) == ["IoU excl. bg, pooled", "pixel accuracy", "mean IoU with background",
                              "mean IoU excl. bg"]
    for label, key in (("pixel accuracy", "pixel_accuracy"), ("mean IoU with background", "mean_overall"),
                       ("mean IoU excl. bg", "mean_excl_bg"), ("IoU excl. bg, pooled", "pooled_excl_bg")):
        assert df.loc[label, "ours (%)"] == pytest.approx(s[key]), label
    assert "88.23" in df.loc["pixel accuracy", "reported by"] and "LIP 59.4" in df.loc["mean IoU with background",
                                                                                        "reported by"]
    cm = np.load(runs.RunDir(run["run_dir"]).evaluation("test").confusion_path("plain"))
    assert df.loc["pixel accuracy", "ours (%)"] == pytest.approx(100 * np.trace(cm) / cm.sum())
    assert "left out" in report.MEAN_CONVENTION
    assert "73.38" in df.loc["IoU excl. bg, pooled", "reported by"]      # the paper's Table 2, "Our model"
