"""The claims table and the evidence pages on run folders written like evaluate.evaluate writes them
(tests/test_report.py's fake runs: corrupted ground truth, real metric code, per-image counts): every
estimate equals the statistic of the saved pooled confusion matrices, intervals hold their estimate, the
prose carries the table's numbers, and an evaluation without per-image counts says how to redo it."""
from __future__ import annotations

import re
import shutil

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fake_runs import make_fake_runs  # noqa: E402

from clothparse import report
from clothparse.categories import CLASSES  # noqa: E402
from clothparse.evaluation import claims  # noqa: E402
from clothparse.evaluation.metrics import pooled_iou  # noqa: E402
from clothparse.runs import RunDir  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_fake_runs(tmp_path_factory.mktemp("claims"))


def _saved(env, model, variant="refined", injection="plain"):
    return np.load(RunDir(env["runs"][(model, variant)]["run_dir"]).evaluation("test").confusion_path(injection))


@pytest.fixture(scope="module")
def table(env):
    return claims.claims_table(env["profile"])


def test_claims_the_profile_can_answer_and_those_it_cannot(env, table):
    answered = set(table["claim"])
    assert claims.HEADLINE_CLAIM.text in answered
    assert {"refined > base training data (unet)", "GT injection raises extended_unet",
            "ClassBranch F1 of extended_unet", "skirt → dress", "predicted pants that are background"} <= answered
    # the tiny profile trains unet and extended_unet only: the other Table 2 pairs are listed, not faked
    assert "deeplabv3 > fpn" in table.attrs["not_run"] and "deeplabv3 > fpn" not in answered
    assert set(table["verdict"]) <= {"agrees", "contradicts", "inconclusive"}
    assert (table["low"] <= table["ours"]).all() and (table["ours"] <= table["high"]).all()
    assert (table["images"] == len(env["test_rows"])).all() and (table["seeds"] == 1).all()


def test_estimates_are_the_statistics_of_the_saved_pooled_matrices(env, table):
    row = table.set_index("claim")
    ours, unet = _saved(env, "extended_unet"), _saved(env, "unet")
    assert row.loc[claims.HEADLINE_CLAIM.text, "ours"] == pytest.approx(100 * (pooled_iou(ours) - pooled_iou(unet)))
    assert row.loc["refined > base training data (unet)", "ours"] == pytest.approx(
        100 * (pooled_iou(unet) - pooled_iou(_saved(env, "unet", "base"))))
    assert row.loc["GT injection raises extended_unet", "ours"] == pytest.approx(
        100 * (pooled_iou(_saved(env, "extended_unet", injection="gt")) - pooled_iou(ours)))
    skirt, dress = CLASSES.index("skirt"), CLASSES.index("dress")
    assert row.loc["skirt → dress", "ours"] == pytest.approx(float(claims.confusion_excess(ours, skirt, dress)))
    f1 = env["runs"][("extended_unet", "refined")]["metrics"]["classbranch"]["f1"]["macro"]
    assert row.loc["ClassBranch F1 of extended_unet", "ours"] == pytest.approx(f1)
    assert row.loc[claims.HEADLINE_CLAIM.text, "paper"] == pytest.approx(73.38 - 72.10)


def test_model_intervals_and_their_tables(env):
    iv = report.model_intervals(env["profile"])
    excl = iv[iv["metric"] == "IoU excl. bg"].set_index("model")
    assert excl.loc[report.model_label("unet"), "estimate"] == pytest.approx(100 * pooled_iou(_saved(env, "unet")))
    assert (iv["low"] <= iv["estimate"] + 1e-9).all() or iv["estimate"].isna().any()
    shown = report.intervals_table(iv)
    assert list(shown.columns[:3]) == ["IoU excl. bg", "IoU overall", "IoU Mask"]
    assert all(re.fullmatch(r"\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]", v) for v in shown["IoU excl. bg"])
    fig = report.figure_class_intervals(iv)
    assert len([a for a in fig.axes if a.get_visible()]) == len(CLASSES)


def test_the_headline_sentence_carries_the_tables_numbers(env, table):
    iv = report.model_intervals(env["profile"])
    h = report.headline(table, iv)
    text = report.headline_sentence(h, "tiny")
    row = table.set_index("claim").loc[claims.HEADLINE_CLAIM.text]
    for value in (row["ours"], row["low"], row["high"]):
        assert f"{value:+.2f}" in text
    assert f"{h['ours']:.2f}" in text and f"{h['unet']:.2f}" in text and "+1.28" in text
    shown = report.claims_display(table)
    assert shown.loc[("Table 2", claims.HEADLINE_CLAIM.text), "ours [95 % interval]"].startswith(f"{row['ours']:.2f}")
    assert report.figure_claims(table).axes


def test_an_evaluation_without_per_image_counts_says_how_to_redo_it(env, tmp_path):
    ev = RunDir(env["runs"][("unet", "base")]["run_dir"]).evaluation("test")
    kept = tmp_path / "counts.npz"
    shutil.move(ev.per_image_confusion_path, kept)
    try:
        with pytest.raises(FileNotFoundError, match="--force"):
            ev.per_image_confusion()
        table = claims.claims_table(env["profile"])
        assert "refined > base training data (unet)" in table.attrs["not_run"]
    finally:
        shutil.move(kept, ev.per_image_confusion_path)


def test_the_claims_command_prints_the_table_and_writes_its_csv(env, tmp_path, capsys):
    import pandas as pd
    import yaml

    from clothparse.cli import main

    profile_yaml = tmp_path / "tiny.yaml"
    profile_yaml.write_text(yaml.safe_dump(env["profile"].to_dict()))
    assert main(["claims", "--profile", str(profile_yaml), "--csv", str(tmp_path / "claims.csv")]) == 0
    out = capsys.readouterr().out
    assert "extended_unet > unet" in out and "not tested: deeplabv3 > fpn" in out and "agrees when" in out
    written = pd.read_csv(tmp_path / "claims.csv")
    assert claims.HEADLINE_CLAIM.text in set(written["claim"]) and {"low", "high", "verdict"} <= set(written)
