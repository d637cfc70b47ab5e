"""Run folders on fake runs (written like training and evaluation write them, without training): the layout and
identity of a run, what makes it complete, errors that say what is missing, its evaluations, finding and
selecting the runs of a profile (one per seed), and the provenance recorded with a run."""
import json
from pathlib import Path

import numpy as np
import pytest
from fake_runs import make_fake_runs, seeded_runs, write_fake_run
from safetensors.torch import save_file

from clothparse import runs
from clothparse.profiles import load_profile
from clothparse.runs import EvalDir, RunDir, run_id, training_params, write_json

from conftest import tiny_profile


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_fake_runs(tmp_path_factory.mktemp("runs"))


# --- finding and selecting runs ----------------------------------------------------------------------------
def test_find_and_select_runs(env, tmp_path):
    profile = env["profile"]
    df = runs.find_runs(profile)
    assert sorted(zip(df["model"], df["variant"])) == [("extended_unet", "refined"), ("unet", "base"),
                                                       ("unet", "refined")]
    assert df["complete"].all() and df["evaluated"].all() and df["matches_profile"].all()
    assert runs.select_run(profile, "unet") == env["runs"][("unet", "refined")]["run_dir"]
    assert runs.select_run(profile, "unet", "base") == env["runs"][("unet", "base")]["run_dir"]
    # a profile with other training parameters does not pick these runs
    other = load_profile(profile, {"train.seed": 1})
    assert not runs.find_runs(other)["matches_profile"].any()
    with pytest.raises(FileNotFoundError, match=r"no complete run of unet \(refined\) evaluated on .test."):
        runs.select_run(other, "unet")
    with pytest.raises(FileNotFoundError, match="fpn"):
        runs.select_run(profile, "fpn")


def test_find_and_select_runs_of_several_seeds(env, tmp_path):
    profile, made = seeded_runs(env, tmp_path, [0, 1, 2], {("unet", "refined"): [2, 0]})
    run0, run2 = made[("unet", "refined", 0)]["run_dir"], made[("unet", "refined", 2)]["run_dir"]
    df = runs.find_runs(profile)
    assert sorted(df["seed"]) == [0, 2] and df["matches_profile"].all()
    # one run per seed, in the profile's order; seed 1 has none and is left out
    assert runs.select_runs(profile, "unet") == [run0, run2]
    assert runs.select_run(profile, "unet") == run0 and runs.select_run(profile, "unet", seed=2) == run2
    with pytest.raises(FileNotFoundError, match=r"seed 1 in .*seed=0.*--seed 1"):
        runs.select_run(profile, "unet", seed=1)
    with pytest.raises(FileNotFoundError, match=r"no complete run of extended_unet .*any of the seeds \[0, 1, 2\]"):
        runs.select_runs(profile, "extended_unet")
    # the seed-0 run is the one-seed profile's run; the seed-2 run is not its run, but can be asked for by seed
    plain = profile.to_dict()
    one = load_profile({**plain, "train": {k: v for k, v in plain["train"].items() if k != "seeds"}})
    assert one.seeds == (0,)
    found = runs.find_runs(one).set_index("seed")
    assert found.loc[0, "matches_profile"] and not found.loc[2, "matches_profile"]
    assert runs.select_runs(one, "unet") == [run0] and runs.select_run(one, "unet", seed=2) == run2
    assert runs.find_runs(env["profile"])["seed"].tolist() == [0, 0, 0]


def test_seeds_per_model_select_each_models_own_runs(env, tmp_path):
    """train.model_seeds: unet's three seeds are its runs (the tables' mean); extended_unet keeps its one seed, and
    its seed-2 run, not one of its seeds, is not selected."""
    written = {("unet", "refined"): [0, 1, 2], ("extended_unet", "refined"): [0, 2]}
    profile, made = seeded_runs(env, tmp_path, [0], written)
    profile = profile.replace({"train.model_seeds": {"unet": [0, 1, 2]}})
    unet = [made[("unet", "refined", s)]["run_dir"] for s in (0, 1, 2)]
    ext0 = made[("extended_unet", "refined", 0)]["run_dir"]
    assert runs.select_runs(profile, "unet") == unet and runs.select_runs(profile, "extended_unet") == [ext0]
    assert runs.select_run(profile, "unet", seed=2) == unet[2] and runs.select_run(profile, "extended_unet") == ext0
    df = runs.find_runs(profile).set_index(["model", "seed"])
    assert df.loc[("unet", 1), "matches_profile"] and not df.loc[("extended_unet", 2), "matches_profile"]
    with pytest.raises(FileNotFoundError, match=r"any of the seeds \[0, 1, 2\].*--seed 0"):
        runs.select_runs(profile.replace({"runs_dir": str(tmp_path / "none")}), "unet")


def test_a_run_trained_with_other_loss_weights_is_not_the_profiles_run(env, tmp_path):
    """A loss ablation has a run id of its own and is never taken for the paper-weighted run, either way round."""
    profile = load_profile(env["profile"], {"runs_dir": str(tmp_path / "runs")})
    ablation = profile.replace({"loss.box": 10.0})
    run = write_fake_run(ablation, "unet", "refined", env["store"], env["test_rows"], seed=1, classbranch=False)
    assert runs.loss_weights(RunDir(run["run_dir"]).params()) == {"seg": 1.0, "cls": 0.5, "box": 10.0}
    assert runs.select_run(ablation, "unet") == run["run_dir"]
    assert not RunDir(run["run_dir"]).matches(profile)
    # a paper-weighted run recorded with its weights (as training records them) is not the ablation's either
    paper = RunDir(env["runs"][("unet", "refined")]["run_dir"])
    assert runs.loss_weights(paper.params()) == {"seg": 1.0, "cls": 0.5, "box": 75.0}
    assert paper.matches(env["profile"]) and not paper.matches(env["profile"].replace({"loss.box": 10.0}))
    assert not paper.matches(env["profile"].replace({"loss.box": 10.0}), {**paper.params(),
                                                                          "loss": {"seg": 1.0, "cls": 0.5, "box": 75}})


def test_find_runs_of_a_profile_without_runs_is_an_empty_table(tmp_path):
    profile = load_profile(tiny_profile(tmp_path))
    assert not profile.runs_path.exists()
    df = runs.find_runs(profile)
    assert df.empty and list(df.columns) == ["model", "variant", "seed", "run_id", "run_dir", "complete",
                                             "evaluated", "matches_profile", "finished"]
    with pytest.raises(FileNotFoundError, match=r"runs found: none\. Train with `clothparse train --profile tiny "
                                                r"--model unet --variant refined --seed 0`"):
        runs.select_run(profile, "unet", evaluated=False)


def test_selecting_an_evaluated_run_of_a_profile_without_runs_says_none_was_found(tmp_path):
    profile = load_profile(tiny_profile(tmp_path))
    with pytest.raises(FileNotFoundError, match="runs found: none"):
        runs.select_run(profile, "unet")


def test_find_runs_sees_incomplete_and_unevaluated_runs_and_selects_the_newest(env, tmp_path):
    profile = load_profile(env["profile"], {"runs_dir": str(tmp_path / "runs")})
    first = write_fake_run(profile, "unet", "refined", env["store"], env["test_rows"], seed=1, classbranch=False)
    # an older-finished copy of the same run in another folder, and an unfinished and an unevaluated run
    older = RunDir(profile.runs_path / "unet-older")
    older.path.mkdir()
    write_json(older.params_path, json.loads(first["run"].params_path.read_text()))
    write_json(older.folder.marker_path,
               {"key": older.id, "complete": True, "finished": "2000-01-01T00:00:00+00:00"})
    unfinished = RunDir(profile.runs_path / "extended_unet-x")
    unfinished.path.mkdir()
    write_json(unfinished.params_path, training_params(profile, "extended_unet", "refined"))
    df = runs.find_runs(profile).set_index("run_id")
    assert list(df["model"]) == ["unet", "unet", "extended_unet"]          # the profile's model order
    assert df.loc["unet-older", "complete"] and not df.loc["unet-older", "evaluated"]
    assert df.loc["unet-older", "finished"] == "2000-01-01T00:00:00+00:00"
    assert not df.loc["extended_unet-x", "complete"] and df.loc["extended_unet-x", "finished"] == ""
    assert df.loc["extended_unet-x", "matches_profile"] and df.loc["extended_unet-x", "seed"] == 0
    # the evaluated run is selected; without evaluation the newest complete one is (the evaluated one here too)
    assert runs.select_run(profile, "unet") == first["run_dir"]
    assert runs.select_run(profile, "unet", evaluated=False) == first["run_dir"]
    first["run"].folder.marker_path.unlink()                              # the evaluated run is no longer complete
    assert runs.select_run(profile, "unet", evaluated=False) == older.path
    with pytest.raises(FileNotFoundError, match=r"unet-older \(seed=0, complete=True, evaluated=False, current "
                                                r"parameters=True\)"):
        runs.select_run(profile, "unet")
    with pytest.raises(FileNotFoundError, match=r"no complete run of extended_unet \(refined\) with the profile's"):
        runs.select_run(profile, "extended_unet", evaluated=False)


# --- one run folder -------------------------------------------------------------------------------------------
def test_the_layout_and_identity_of_a_run(tmp_path):
    run = RunDir(tmp_path / "unet-abc")
    assert run.id == "unet-abc" and str(Path(run)) == str(tmp_path / "unet-abc")
    assert run == RunDir(str(tmp_path / "unet-abc")) and hash(run) == hash(RunDir(tmp_path / "unet-abc"))
    assert run != tmp_path / "unet-abc" and len({run, RunDir(tmp_path / "unet-abc")}) == 1
    assert repr(run) == f"RunDir({str(tmp_path / 'unet-abc')!r})"
    names = {"params_path": "params.json", "provenance_path": "provenance.json", "history_path": "history.csv",
             "weights_path": "model.safetensors", "metrics_path": "metrics.json",
             "checkpoint_path": "checkpoints/last.pt", "checkpoint_state_path": "checkpoints/last.json",
             "failed_path": "FAILED"}
    for attr, name in names.items():
        assert getattr(run, attr) == run.path / name
    ev = run.evaluation("valid")
    assert isinstance(ev, EvalDir) and ev.path == run.path / "evaluation" / "valid" and ev.run is run
    assert run.evaluation().path.name == "test" and run.evaluation("test", tta=True).path.name == "test-tta"
    assert run.evaluation("test", tta=True).split == "test"
    assert ev.confusion_path("gt_hard") == ev.path / "confusion_gt_hard.npy"
    assert ev.per_image_confusion_path.name == "per_image_confusion.npz"


def test_the_run_id_follows_what_changes_the_trained_model(tmp_path):
    profile = load_profile(tiny_profile(tmp_path))
    params = training_params(profile, "unet", "refined")
    assert set(params) == {"model", "variant", "size", "train", "split", "encoder_name", "encoder_weights"}
    assert "keep_checkpoint" not in params["train"] and "seeds" not in params["train"]
    rid = run_id("unet", params, "store1")
    assert rid.startswith("unet-") and len(rid) == len("unet-") + 12
    assert RunDir.for_training(profile, "unet", "refined", "store1").path == profile.runs_path / rid
    same = [load_profile(profile, {"train.keep_checkpoint": True}), load_profile(profile, {"train.seeds": [0, 1]}),
            load_profile(profile, {"runs_dir": str(tmp_path / "elsewhere")})]
    assert all(RunDir.for_training(p, "unet", "refined", "store1").id == rid for p in same)
    other = [("unet", "refined", "store2", profile), ("unet", "base", "store1", profile),
             ("extended_unet", "refined", "store1", profile),
             ("unet", "refined", "store1", load_profile(profile, {"train.lr_max": 1e-3})),
             ("unet", "refined", "store1", profile.with_seed(1)),
             ("unet", "refined", "store1", load_profile(profile, {"size": [96, 64]}))]
    ids = {RunDir.for_training(p, m, v, k).id for m, v, k, p in other}
    assert len(ids) == len(other) and rid not in ids


def test_a_run_is_complete_only_with_its_own_id_as_the_key(tmp_path):
    run = RunDir(tmp_path / "unet-abc")
    run.path.mkdir()
    write_json(run.params_path, {"model": "unet", "variant": "base"})
    assert run.exists() and not run.is_complete() and run.finished() == ""
    with pytest.raises(FileNotFoundError, match=r"unet-abc: the run is not complete \(no COMPLETE marker for "
                                                r"unet-abc\); train it first"):
        run.require_complete()
    write_json(run.folder.marker_path, {"key": "unet-other", "complete": True, "finished": "x"})
    assert not run.is_complete() and run.finished() == ""                  # a copied folder of another run
    run.mark_complete(epochs=3)
    assert run.is_complete() and run.finished() and run.folder.record()["epochs"] == 3
    assert run.require_complete() == {"model": "unet", "variant": "base"}


def test_params_say_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        RunDir(tmp_path / "gone").params()
    (tmp_path / "empty").mkdir()
    assert not RunDir(tmp_path / "empty").exists()
    with pytest.raises(FileNotFoundError, match=r"empty is not a run folder \(no params.json\)"):
        RunDir(tmp_path / "empty").params()
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "params.json").write_text('{"model": ')
    with pytest.raises(ValueError, match=r"torn/params\.json: not valid JSON"):
        RunDir(tmp_path / "torn").params()
    for name, params in (("list", [1, 2]), ("nomodel", {"variant": "base"}), ("novariant", {"model": "unet"})):
        (tmp_path / name).mkdir()
        write_json(tmp_path / name / "params.json", params)
        with pytest.raises(ValueError, match=f"{name}/params.json: no 'model'/'variant' entry"):
            RunDir(tmp_path / name).params()


def test_load_model_refuses_what_it_cannot_load(tmp_path):
    run = RunDir(tmp_path / "unet-abc")
    run.path.mkdir()
    write_json(run.params_path, {"model": "unet", "variant": "base", "size": [32, 32]})
    with pytest.raises(FileNotFoundError, match="no model.safetensors — the run has not finished training"):
        run.load_model()
    save_file({}, str(run.weights_path))
    write_json(run.params_path, {"model": "unet", "variant": "base", "size": [32, 32], "classes": ["bg", "fg"]})
    with pytest.raises(ValueError, match=r"trained on classes \['bg', 'fg'\], not this package's"):
        run.load_model()
    write_json(run.params_path, {"model": "unet", "variant": "base", "size": [32, 32]})
    run.weights_path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file"):
        run.load_model()


def test_a_run_reads_its_profile_and_its_store(env):
    run = env["runs"][("unet", "refined")]["run"]
    assert run.profile() == env["profile"]
    assert run.matches(env["profile"]) and not run.matches(env["profile"].with_seed(1))
    store = run.load_store("test")
    assert store.meta["key"] == env["store"].key and len(store) == len(env["store"])
    with pytest.raises(FileNotFoundError, match=r"has no finished evaluation on 'valid'.*clothparse evaluate .* "
                                                r"--split valid"):
        run.load_store("valid")


def test_an_evaluation_is_complete_whatever_its_key_and_reads_its_per_image_counts(env, tmp_path):
    made = env["runs"][("extended_unet", "refined")]
    ev = made["run"].evaluation("test")
    assert ev.is_complete() and ev.require() is ev and ev.metrics() == made["metrics"]
    rows, counts = ev.per_image("gt")
    assert np.array_equal(rows, env["test_rows"]) and counts.dtype == np.int64
    assert counts.shape == (len(env["test_rows"]), 9, 9)
    assert counts.sum() == made["gt"].size and np.array_equal(ev.per_image_confusion("gt"), counts)
    with pytest.raises(KeyError, match=r"has no variant 'user'; it has \['gt', 'gt_hard', 'no_dress', 'plain'\]"):
        ev.per_image("user")
    # an evaluation's folder is keyed on (split, prior, hard): another key is another folder state
    assert ev.folder({"split": "test", "prior": None, "hard": False}).is_complete()
    assert not ev.folder({"split": "test", "prior": "skirt", "hard": False}).is_complete()
    # an evaluation from before per-image counts were kept says how to redo it
    old = RunDir(tmp_path / "unet-old").evaluation("test")
    old.path.mkdir(parents=True)
    old.folder({"split": "test"}).mark_complete()
    with pytest.raises(FileNotFoundError, match=r"per_image_confusion\.npz is missing.*--split test --force"):
        old.per_image()
    old.folder({"split": "test"}).start()
    assert not old.is_complete()
    with pytest.raises(FileNotFoundError, match="no finished evaluation on 'test'"):
        old.metrics()


# --- provenance ---------------------------------------------------------------------------------------------------
def test_the_provenance_of_a_run(tmp_path):
    prov = runs.provenance("cpu", seed=7)
    assert set(prov) == {"git_commit", "packages", "python", "platform", "device", "device_description", "cpu_model",
                         "cpu_capability", "seed", "started"}
    assert prov["seed"] == 7 and prov["device"] == "cpu" and prov["device_description"].startswith("CPU ")
    # a CPU rerun matches only on the same CPU model with the same PyTorch kernels: both are named
    assert prov["cpu_model"] and prov["cpu_capability"] and prov["cpu_capability"] != "unknown"
    assert prov["cpu_model"] in prov["device_description"] and prov["cpu_capability"] in prov["device_description"]
    assert prov["packages"]["torch"] and prov["packages"]["numpy"] and set(prov["packages"]) == set(runs.PACKAGES)
    assert prov["started"].endswith("+00:00")
    assert runs.git_commit(tmp_path) is None                               # not a repository
    json.dumps(prov)                                                       # recorded as JSON as it is


def test_the_cpu_model_comes_from_cpuinfo_or_platform(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n")
    real_path = runs.Path
    monkeypatch.setattr(runs, "Path", lambda p: cpuinfo if str(p) == "/proc/cpuinfo" else real_path(p))
    assert runs.cpu_model() == "Intel(R) Xeon(R) Gold 6338"
    monkeypatch.setattr(runs, "Path", lambda p: tmp_path / "absent")            # not Linux
    monkeypatch.setattr(runs.platform, "processor", lambda: "arm")
    assert runs.cpu_model() == "arm"
