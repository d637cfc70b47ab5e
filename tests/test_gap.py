"""The evidence page's numbers on fake runs whose histories are written by hand: the gap to the plain U-Net per
epoch (one seed: the line alone; three seeds: the mean and its t-interval), whether it closes in the last third,
each weighted loss term's share, the paragraph carrying exactly the tables' numbers, and the claims table across
two profiles' builds."""
from __future__ import annotations

import math
import re
import shutil

import matplotlib
import papermill

matplotlib.use("Agg")

import pytest  # noqa: E402
from fake_runs import make_fake_runs, seeded_runs, write_fake_run, write_history  # noqa: E402

from clothparse import report  # noqa: E402
from clothparse.book import build as book  # noqa: E402
from clothparse.book import steps as book_steps  # noqa: E402
from clothparse.evaluation import claims  # noqa: E402
from clothparse.profiles import load_profile  # noqa: E402
from clothparse.report import gap  # noqa: E402
from clothparse.runs import RunDir, read_json, write_json  # noqa: E402

from conftest import tiny_profile, write_profile  # noqa: E402

UNET_IOU = [0.20, 0.30, 0.40, 0.50, 0.60, 0.65]
OURS_IOU = [0.25, 0.28, 0.35, 0.46, 0.58, 0.66]          # gaps +5, −2, −5, −4, −2, +1 points
# unweighted terms; × (1, 0.5, 75): epoch 1 (1.0, 0.3, 0.3), epoch 2 (0.8, 0.2, 0.6), then (0.5, 0.25, 0.75)
TRAIN = {"seg": [1.0, 0.8] + [0.5] * 4, "cls": [0.6, 0.4] + [0.5] * 4, "box": [0.004, 0.008] + [0.01] * 4}
VALID = {"seg": [0.2] * 6, "cls": [1.2] * 6, "box": [0.004] * 6}   # weighted 0.2, 0.6, 0.3 of 1.1
T_975_2 = 4.302652729911275   # the 97.5 % quantile of Student's t with 2 degrees of freedom


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_fake_runs(tmp_path_factory.mktemp("gap"))
    write_history(env["runs"][("unet", "refined")]["run_dir"], UNET_IOU, train={"seg": [0.9] * 6},
                  valid={"seg": [0.8] * 6})
    write_history(env["runs"][("extended_unet", "refined")]["run_dir"], OURS_IOU, train=TRAIN, valid=VALID)
    return env


def test_one_seed_gap_is_the_line_alone(env):
    g = gap.gap_by_epoch(env["profile"])
    assert list(g["comparison"].unique()) == ["Our model − Plain U-Net"]
    assert list(g["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert list(g["gap"]) == pytest.approx([5, -2, -5, -4, -2, 1])
    assert (g["seeds"] == 1).all() and g["low"].isna().all() and g["high"].isna().all()
    assert g["paper"].iloc[0] == pytest.approx(73.38 - 72.10)
    assert gap.gap_table(g)["Our model − Plain U-Net"].tolist() == ["+5.00", "-2.00", "-5.00", "-4.00", "-2.00",
                                                                     "+1.00"]


def test_the_gap_closes_in_the_last_third(env):
    s = gap.gap_summary(gap.gap_by_epoch(env["profile"])).loc["Our model − Plain U-Net"]
    # six epochs: the last third is epochs 5 and 6
    assert s["last third from epoch"] == 5 and s["epochs"] == 6
    assert (s["first epoch"], s["at its start"], s["final"]) == pytest.approx((5, -2, 1))
    assert s["last-third mean"] == pytest.approx(-0.5) and s["change over last third"] == pytest.approx(3)
    assert s["trend"] == "closes"
    sentence = gap.gap_sentence(gap.gap_summary(gap.gap_by_epoch(env["profile"])))
    assert "one seed: the line alone" in sentence and "closes the gap" in sentence


@pytest.mark.parametrize("start, end, trend", [(-3, -1, "narrows"), (-1, -3, "widens"), (-2, -2.05, "stays"),
                                               (1, 2, "ahead"), (-1, 0.5, "closes")])
def test_trend_words(start, end, trend):
    assert gap._trend(start, end) == trend


def test_several_seeds_give_the_mean_and_a_t_interval(env, tmp_path):
    profile, made = seeded_runs(env, tmp_path, [0, 1, 2], {("unet", "refined"): [0, 1, 2],
                                                           ("extended_unet", "refined"): [0, 1, 2]})
    per_seed_gap = {0: [1, 1, 1], 1: [2, 3, 4], 2: [3, 5, 7]}   # points
    for s, gaps in per_seed_gap.items():
        write_history(made[("unet", "refined", s)]["run_dir"], [0.5, 0.6, 0.7])
        write_history(made[("extended_unet", "refined", s)]["run_dir"],
                      [u + d / 100 for u, d in zip([0.5, 0.6, 0.7], gaps)])
    g = gap.gap_by_epoch(profile)
    assert list(g["seeds"]) == [3, 3, 3]
    assert list(g["gap"]) == pytest.approx([2, 3, 4])
    half = [T_975_2 * sd / math.sqrt(3) for sd in (1, 2, 3)]   # the seeds' sds: 1, 2, 3
    assert list(g["low"]) == pytest.approx([m - h for m, h in zip([2, 3, 4], half)])
    assert list(g["high"]) == pytest.approx([m + h for m, h in zip([2, 3, 4], half)])
    s = gap.gap_summary(g).iloc[0]
    assert (s["final low"], s["final high"]) == pytest.approx((4 - half[2], 4 + half[2]))
    assert s["trend"] == "ahead"
    assert "95 % t-interval over seeds, 3 seeds" in gap.gap_sentence(gap.gap_summary(g))
    assert gap.figure_gap(g).axes
    # the default profile's way: three seeds for the pair alone (train.model_seeds), one for every other model
    pair = load_profile(env["profile"], {"runs_dir": str(tmp_path / "runs"),
                                         "train.model_seeds": {"unet": [0, 1, 2], "extended_unet": [0, 1, 2]}})
    assert pair.seeds == (0,)
    g = gap.gap_by_epoch(pair)
    assert list(g["seeds"]) == [3, 3, 3] and list(g["gap"]) == pytest.approx([2, 3, 4])


def test_loss_shares_are_the_weighted_terms_over_their_sum(env):
    shares = gap.loss_shares(env["runs"][("extended_unet", "refined")]["run_dir"])
    assert shares.attrs["weights"] == {"seg": 1.0, "cls": 0.5, "box": 75.0}
    assert shares.attrs["total_error"] < 1e-9   # the weighted terms add up to the recorded total
    by = shares.set_index(["part", "epoch", "term"])["share"]
    assert [by[("train", 1, t)] for t in gap.TERMS] == pytest.approx([62.5, 18.75, 18.75])
    assert [by[("train", 2, t)] for t in gap.TERMS] == pytest.approx([50, 12.5, 37.5])
    assert [by[("train", 6, t)] for t in gap.TERMS] == pytest.approx([100 / 3, 50 / 3, 50])
    assert [by[("valid", 3, t)] for t in gap.TERMS] == pytest.approx([200 / 11, 600 / 11, 300 / 11])
    table = gap.shares_table(gap.profile_loss_shares(env["profile"]))
    assert table.loc[("Our model", "train", 1), "dominant"] == "seg"
    assert (table.loc[("Our model", "train")]["dominant"].iloc[1:] == "").all()
    assert (table.loc[("Our model", "valid")]["dominant"] == "").all()   # 54.5 % is not above 60 %
    dominant = gap.dominant_terms(table)
    assert dominant.to_dict("records") == [{"model": "Our model", "part": "train", "term": "seg", "epochs": 1,
                                            "of": 6, "largest share": pytest.approx(62.5)}]
    assert gap.figure_loss_shares(gap.profile_loss_shares(env["profile"])).axes


def test_the_runs_own_weights_are_used_and_checked(env, tmp_path):
    run = RunDir(shutil.copytree(env["runs"][("extended_unet", "refined")]["run_dir"], tmp_path / "run"))
    write_history(run, [0.5, 0.6], train={"seg": [1.0, 1.0], "cls": [1.0, 1.0], "box": [0.1, 0.1]},
                  weights={"seg": 1.0, "cls": 1.0, "box": 10.0})
    wrong = gap.loss_shares(run)   # the history was trained with other weights than the params say
    assert wrong.attrs["total_error"] > 0.1
    params = read_json(run.params_path)
    write_json(run.params_path, {**params, "loss": {"seg": 1, "cls": 1, "box": 10}})
    right = gap.loss_shares(run)
    assert right.attrs["weights"] == {"seg": 1.0, "cls": 1.0, "box": 10.0} and right.attrs["total_error"] < 1e-9
    assert list(right[right["epoch"] == 1]["share"]) == pytest.approx([100 / 3] * 3)


def test_the_paragraph_states_the_tables_numbers_and_no_other(env):
    p = env["profile"]
    pair = gap.pair_claims(p)
    assert list(pair["claim"]) == [claims.HEADLINE_CLAIM.text]
    assert set(pair.attrs["not_run"]) == {"classbranch_only > unet", "branches > unet"}
    summary = gap.gap_summary(gap.gap_by_epoch(p))
    shares = gap.profile_loss_shares(p)
    text = gap.evidence_paragraph(pair, summary, shares, p.name)
    shown = report.claims_display(pair).iloc[0]
    s = summary.loc["Our model − Plain U-Net"]
    last = gap.shares_table(shares).loc[("Our model", "train", 6)]
    expected = [shown["ours [95 % interval]"], shown["paper"], f"{s['first epoch']:+.2f}", f"{s['at its start']:+.2f}",
                f"{s['final']:+.2f}", f"{s['change over last third']:+.2f}", f"epoch {s['last third from epoch']}",
                f"epoch {s['epochs']}", *(f"{t} is {last[t]:.1f} %" for t in gap.TERMS), "seg's 62.5 %"]
    assert shown["ours [95 % interval]"] == f"{pair['ours'][0]:.2f} [{pair['low'][0]:.2f}, {pair['high'][0]:.2f}]"
    rest = text
    for piece in expected:
        assert piece in rest, piece
        rest = rest.replace(piece, "")
    # what is left is words and the rule's constants: 95 % intervals, epoch 1, the 60 % threshold
    assert set(gap.paragraph_numbers(rest)) <= {95.0, 1.0, 60.0}, rest
    assert f"this build {gap._VERDICT_WORDS[pair['verdict'][0]]}" in text and "closes the gap" in text


def test_no_pair_no_paragraph_numbers(env):
    empty = gap.pair_claims(env["profile"]).iloc[0:0]
    text = gap.evidence_paragraph(empty, gap.gap_summary(gap.gap_by_epoch(env["profile"])).iloc[0:0],
                                  gap.profile_loss_shares(env["profile"]).iloc[0:0], "x")
    assert "cannot say" in text and not gap.paragraph_numbers(text)


def test_claims_across_two_builds(env, tmp_path):
    other = load_profile({**tiny_profile(tmp_path), "name": "other"})
    for i, model in enumerate(["unet", "extended_unet"]):
        write_fake_run(other, model, "refined", env["store"], env["test_rows"], seed=20 + i,
                       classbranch=model == "extended_unet")
    empty = load_profile({**tiny_profile(tmp_path / "empty"), "name": "empty"})
    tables = report.claims_by_profile(env["profile"], others=[other, empty, env["profile"]])
    assert list(tables) == ["tiny", "other"]   # a build without evaluated runs is left out
    assert report.absent_builds(tables, [other, empty]) == ["empty"]
    across = report.claims_across(tables)
    assert list(across.columns.get_level_values(0).unique()) == ["paper", "tiny", "other"]
    assert list(across.columns)[1:] == [("tiny", "ours [95 % interval]"), ("tiny", "verdict"),
                                        ("other", "ours [95 % interval]"), ("other", "verdict")]
    for name, t in tables.items():
        shown = report.claims_display(t)
        head = ("Table 2", claims.HEADLINE_CLAIM.text)
        assert across.loc[head, (name, "ours [95 % interval]")] == shown.loc[head, "ours [95 % interval]"]
        assert across.loc[head, (name, "verdict")] == shown.loc[head, "verdict"]
        assert across.loc[head, ("paper", "")] == "+1.28"
    # the other build trains no base-data run: Table 1 is the first build's alone
    t1 = ("Table 1", "refined > base training data (unet)")
    assert across.loc[t1, ("other", "verdict")] == "—" and across.loc[t1, ("tiny", "verdict")] != "—"
    assert [k[1] for k in across.index] == [c.text for c in claims.CLAIMS if (c.table, c.text) in across.index]


def test_the_evidence_page_follows_the_claims_page_in_the_plan(tmp_path):
    steps = book.plan(load_profile(tiny_profile(tmp_path)))
    names = [s.output for s in steps]
    assert names.index("evidence") == names.index("claims") + 1
    evidence = steps[names.index("evidence")]
    assert evidence.reads == "all" and evidence.parameters["profile"] == "tiny"
    for step in (evidence, steps[names.index("claims")]):
        assert set(step.parameters) <= set(papermill.inspect_notebook(str(book.NOTEBOOKS / f"{step.notebook}.ipynb")))
    assert re.search(r"file: book/notebooks/evidence\n", (book.REPO_ROOT / "_toc.yml").read_text())


def test_a_page_comparing_builds_is_redone_when_another_build_completes_a_run(tmp_path):
    profile = load_profile(tiny_profile(tmp_path))
    other_yaml = write_profile({**tiny_profile(tmp_path / "o"), "name": "other"}, tmp_path / "other.yaml")
    alone = book_steps.Step("claims", "claims", {"profile": "tiny"}, reads="all")
    step = book_steps.Step("claims", "claims", {"profile": "tiny", "other_profiles": [str(other_yaml)]}, reads="all")
    assert book_steps._inputs_digest(profile, step) == ""
    (profile.runs_path / "unet-aaa").mkdir(parents=True)
    (profile.runs_path / "unet-aaa" / "COMPLETE").write_text('{"key": "a"}')
    first = book_steps._inputs_digest(profile, step)
    assert first == book_steps._inputs_digest(profile, alone)   # no other build's runs: the key of before
    other_runs = load_profile(other_yaml).runs_path / "unet-bbb"
    other_runs.mkdir(parents=True)
    (other_runs / "COMPLETE").write_text('{"key": "b"}')
    assert book_steps._inputs_digest(profile, step) != first
    assert book_steps._inputs_digest(profile, alone) == first
