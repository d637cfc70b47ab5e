"""The command line: every command is defined in cli.py and a module that cannot be imported is an error
naming it; --set reaches the profile of data, train and book; bad input (a wrong profile value, broken
YAML, a truncated model.safetensors, a malformed params.json, a missing run folder, a .pt holding pickled
objects, an unwritable output) is one message and exit code 2, not a traceback; parse and export work
end to end; data says how many source images were skipped and where the reasons are."""
import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_export import write_run
from test_images import write_inputs

from clothparse import cli
from clothparse.categories import CLASSES, CLOTHING, PALETTE
from clothparse.profiles import load_profile
from clothparse.runs import RunDir

from conftest import tiny_profile, write_profile

DRESS = CLASSES.index("dress")
COMMANDS = {"claims", "data", "train", "evaluate", "book", "bench", "parse", "export"}
REFUSAL = "refused to load: it contains pickled Python objects, which are not loaded from untrusted files"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_message(code: int, err: str, command: str, *says: str) -> None:
    """Exit code 2 and one ``clothparse <command>: error:`` message saying ``says``, without a traceback."""
    assert code == 2, err
    # progress bars of the data preparation may come first; the message is the last thing said
    message = err[err.rfind(f"clothparse {command}: error: "):] if f"clothparse {command}: error: " in err else err
    assert message.startswith(f"clothparse {command}: error: ") and err.count(": error: ") == 1, err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    for text in says:
        assert text in err, f"{text!r} not in {err!r}"


class Payload:
    """Unpickling this would create ``path``: a file that must never appear."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def write_pickle_payload(path: Path, marker: Path) -> Path:
    torch.save({"model": {"weight": torch.zeros(2)}, "opt": Payload(marker)}, path)
    return path


@pytest.fixture
def profile_yaml(tmp_path):
    return write_profile(tiny_profile(tmp_path), tmp_path / "tiny.yaml")


# --- every command, and its module named when it cannot be imported ----------------------------------
def test_every_command_is_defined_in_the_cli(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == COMMANDS
    for name in ("data", "train", "book", "claims"):
        assert "--set" in sub.choices[name].format_help()
    import clothparse.parser.export
    import clothparse.parser.parse

    assert not hasattr(clothparse.parser.parse, "add_parser") and not hasattr(clothparse.parser.export, "add_parser")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    usage = capsys.readouterr().out
    assert exit_.value.code == 0 and all(c in usage for c in COMMANDS)


@pytest.mark.parametrize("argv, module", [
    (["data", "--profile", "{yaml}"], "clothparse.datasets.prepare"),
    (["train", "--profile", "{yaml}", "--model", "unet"], "clothparse.training.train"),
    (["evaluate", "{tmp}/run"], "clothparse.evaluation.evaluate"),
    (["book", "--profile", "{yaml}", "--no-build"], "clothparse.book.build"),
    (["parse", "{tmp}/photo.jpg", "--run", "{tmp}/run", "--out", "{tmp}/out"], "clothparse.parser.files"),
    (["export", "{tmp}/run", "--out", "{tmp}/model.pt"], "clothparse.parser.export"),
])
def test_a_module_that_cannot_be_imported_is_an_error_naming_it(argv, module, tmp_path, profile_yaml, capsys,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails, as a broken module would
    code, _, err = run_cli(capsys, *[a.format(yaml=profile_yaml, tmp=tmp_path) for a in argv])
    assert_message(code, err, argv[0], f"cannot import {module}: ")


def test_a_broken_import_inside_the_module_names_both(tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "clothparse.parser.files", raising=False)
    monkeypatch.setitem(sys.modules, "clothparse.parser.outputs", None)
    code, _, err = run_cli(capsys, "parse", tmp_path / "a.jpg", "--run", tmp_path, "--out", tmp_path / "out")
    assert_message(code, err, "parse", "cannot import clothparse.parser.files: ", "clothparse.parser.outputs")


# --- profiles and --set ------------------------------------------------------------------------------------
def test_a_profile_with_a_wrong_typed_value_names_file_and_key(tmp_path, capsys):
    bad = write_profile({**tiny_profile(tmp_path), "train": {"augment": "false"}}, tmp_path / "bad.yaml")
    for command in (["data"], ["train", "--model", "unet"], ["book", "--no-build"]):
        code, _, err = run_cli(capsys, *command, "--profile", bad)
        assert_message(code, err, command[0], str(bad), "train.augment", "expected true or false, got 'false'")


def test_a_profile_with_a_yaml_syntax_error_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\ntrain: {batch_size: 8\n")
    code, _, err = run_cli(capsys, "data", "--profile", bad)
    assert_message(code, err, "data", f"{bad}: not valid YAML")


def test_an_unknown_profile_lists_the_known_ones(capsys):
    code, _, err = run_cli(capsys, "data", "--profile", "no_such_profile")
    assert_message(code, err, "data", "no profile 'no_such_profile'", "'default'")


@pytest.mark.parametrize("command, sets, says", [
    (["train", "--model", "unet"], ["train.epochs_unfrozen=ten"],
     "train.epochs_unfrozen: expected an integer, got 'ten'"),
    (["book", "--no-build"], ["train.epochs_unfrozen"], "expected KEY=VALUE"),
    (["book", "--no-build"], ["train.bogus=1"], "unknown profile key 'train.bogus'"),
    (["data"], ["data.kind=nope"], "data.kind: unknown value 'nope'"),
    # the file alone is valid: these come from the overrides, read as YAML (a list, integers) and applied together
    (["book", "--no-build"], ["size=[60, 64]"], "size 60×64: both sides must be positive multiples of 32"),
    (["train", "--model", "unet"], ["train.epochs_frozen=0", "train.epochs_unfrozen=0"], "nothing would train"),
])
def test_set_overrides_reach_the_profile(command, sets, says, profile_yaml, capsys):
    load_profile(profile_yaml)  # valid as written
    code, _, err = run_cli(capsys, *command, "--profile", profile_yaml, *[x for s in sets for x in ("--set", s)])
    assert_message(code, err, command[0], says)


def test_train_device_is_a_shortcut_for_set_device(profile_yaml):
    args = cli.build_parser().parse_args(["train", "--profile", str(profile_yaml), "--model", "unet",
                                          "--set", "device=cpu", "--set", "train.seed=5", "--device", "auto"])
    profile = cli._profile(args)
    assert (profile.device, profile.train.seed, profile.train.batch_size) == ("auto", 5, 8)
    args = cli.build_parser().parse_args(["data", "--profile", str(profile_yaml), "--set", "device=cuda:1"])
    assert cli._profile(args).device == "cuda:1"


def test_train_seed_reaches_train(profile_yaml, monkeypatch, capsys):
    import types

    calls = []
    fake = types.SimpleNamespace(train=lambda profile, model, **kw: calls.append((model, kw)) or "run-dir")
    real = cli._module
    monkeypatch.setattr(cli, "_module", lambda name: fake if name == "training.train" else real(name))
    code, out, _ = run_cli(capsys, "train", "--profile", profile_yaml, "--model", "unet", "--seed", 3)
    assert code == 0 and out.strip() == "run-dir"
    assert calls == [("unet", {"variant": None, "force": False, "seed": 3})]
    run_cli(capsys, "train", "--profile", profile_yaml, "--model", "unet")
    assert calls[-1][1]["seed"] is None  # train() picks the model's default seed (test_train_setup)


# --- run folders --------------------------------------------------------------------------------------------
@pytest.fixture
def truncated_run(tmp_path):
    run = write_run(tmp_path / "runs" / "unet-truncated", model="unet", profile=tiny_profile(tmp_path))
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return run


@pytest.fixture
def malformed_run(tmp_path):
    run = write_run(tmp_path / "runs" / "unet-malformed", model="unet", profile=tiny_profile(tmp_path))
    (run / "params.json").write_text('{"model": "unet", "variant": ')
    return run


def _run_commands(run, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(photo)
    return {"evaluate": ["evaluate", run],
            "parse": ["parse", photo, "--run", run, "--out", tmp_path / "out", "--no-progress"],
            "export": ["export", run, "--out", tmp_path / "model.pt"]}


@pytest.mark.parametrize("command", ["evaluate", "parse", "export"])
def test_a_truncated_safetensors_is_a_message_naming_it(command, truncated_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, *_run_commands(truncated_run, tmp_path)[command])
    assert_message(code, err, command, f"{truncated_run / 'model.safetensors'}: not a readable safetensors file")
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "out" / "summary.csv").exists()


@pytest.mark.parametrize("command", ["evaluate", "parse", "export"])
def test_a_malformed_params_json_is_a_message_naming_it(command, malformed_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, *_run_commands(malformed_run, tmp_path)[command])
    assert_message(code, err, command, f"{malformed_run / 'params.json'}: not valid JSON")


@pytest.mark.parametrize("command", ["evaluate", "parse", "export"])
def test_a_missing_run_folder_says_so(command, tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "run"
    code, _, err = run_cli(capsys, *_run_commands(missing, tmp_path)[command])
    assert_message(code, err, command, f"{missing}: no such run folder")


def test_an_unfinished_run_cannot_be_evaluated(tmp_path, capsys):
    run = write_run(tmp_path / "unet-unfinished", model="unet", complete=False, profile=tiny_profile(tmp_path))
    code, _, err = run_cli(capsys, "evaluate", run)
    assert_message(code, err, "evaluate", "the run is not complete", "train it first")


# --- files with pickled objects ------------------------------------------------------------------------------
def test_a_pickle_payload_is_refused_naming_the_file(tmp_path):
    from clothparse.weights import WeightsError, load_state_dict

    marker = tmp_path / "executed"
    evil = write_pickle_payload(tmp_path / "evil.pt", marker)
    # the library's loader refuses in its own words, and never passes on torch's advice (weights_only=False)
    with pytest.raises(WeightsError) as refused:
        load_state_dict(evil)
    message = cli.error_message(refused.value)
    assert message.startswith(f"{evil}: {REFUSAL} (weights_only=True)") and "False" not in message, message
    assert refused.value.path == evil
    assert not marker.exists()  # nothing in it ran


def test_an_unreadable_safetensors_names_the_file(tmp_path):
    from clothparse.weights import WeightsError, load_state_dict

    broken = tmp_path / "weights.safetensors"
    broken.write_bytes(b"\x05\x00")
    with pytest.raises(WeightsError) as raised:
        load_state_dict(broken)
    assert cli.error_message(raised.value).startswith(f"{broken}: not a readable safetensors file (")


# --- parse and export end to end -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("cli") / "extended_unet-random")


def test_parse_a_folder_reports_the_corrupt_file(tmp_path, random_run, capsys):
    folder = tmp_path / "photos"
    files = write_inputs(folder)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "parse", folder, tmp_path / "missing.png", "--run", random_run, "--out", out,
                                "--absent", "dress", "--hard", "--batch-size", "3", "--device", "cpu",
                                "--no-progress")
    assert code == 1
    assert "skipped" in err and "corrupt.jpg" in err and "missing.png" in err
    assert f"parsed {len(files)} of {len(files) + 2} images (2 failed)" in stdout
    with open(out / "summary.csv", newline="") as fh:
        rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(files) | {"corrupt.jpg", "missing.png"}
    assert rows["corrupt.jpg"]["status"] == "failed" and rows["corrupt.jpg"]["error"]
    assert rows["missing.png"]["status"] == "failed" and "no such file" in rows["missing.png"]["error"]
    for name, size in files.items():
        row = rows[name]
        assert row["status"] == "ok" and (int(row["height"]), int(row["width"])) == size
        mask = Image.open(out / row["mask"])
        assert mask.mode == "P" and mask.size == (size[1], size[0])
        assert mask.getpalette()[:27] == [v for rgb in PALETTE for v in rgb]
        info = json.loads((out / row["json"]).read_text())
        values = np.asarray(mask)
        assert info["classes"] == [c for c in CLOTHING if c in info["classes"]]
        assert set(info["classes"]) <= {CLASSES[v] for v in np.unique(values)}
        assert not (values == DRESS).any() and info["hard"] and info["run"] == str(random_run)
        assert row["classes"] == " ".join(info["classes"])
        for c in info["classes"]:
            main = info["colours"][c]["colours"][0]["name"] if info["colours"][c]["colours"] else ""
            assert row[f"colour_{c}"] == main
        with Image.open(out / row["overlay"]) as tinted:  # a tinted photo: JPEG, at the photo's size
            assert tinted.format == "JPEG" and tinted.size == (size[1], size[0])
    assert not (out / "notes.json").exists()


def test_parse_every_image_ok_exits_0_and_no_image_is_an_error(tmp_path, random_run, capsys):
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(tmp_path / "one.png")
    code, stdout, _ = run_cli(capsys, "parse", tmp_path / "*.png", "--run", random_run, "--out", tmp_path / "out",
                              "--no-progress")
    assert code == 0 and "parsed 1 of 1 images (0 failed)" in stdout
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "parse", tmp_path / "empty", "--run", random_run, "--out", tmp_path / "out2")
    assert_message(code, err, "parse", "no images in")


def test_parse_tta_writes_the_mirror_averaged_masks(tmp_path, random_run, capsys):
    from clothparse.parser.parse import Parser

    photo = np.random.default_rng(0).integers(0, 255, (50, 40, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "one.png")
    for flag, out in (([], "plain"), (["--tta"], "tta")):
        code, _, _ = run_cli(capsys, "parse", tmp_path / "one.png", "--run", random_run, "--out", tmp_path / out,
                             "--no-progress", "--workers", "0", *flag)
        assert code == 0
    written = {out: np.asarray(Image.open(tmp_path / out / "one_mask.png")) for out in ("plain", "tta")}
    want = {out: np.asarray(Parser(run=random_run, device="cpu", tta=out == "tta")(photo)[0].mask)
            for out in ("plain", "tta")}
    assert all(np.array_equal(written[k], want[k]) for k in written)
    assert not np.array_equal(written["plain"], written["tta"])


def test_an_output_folder_that_cannot_be_made_is_a_message(tmp_path, random_run, capsys):
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(tmp_path / "one.png")
    (tmp_path / "a_file").write_text("")
    code, _, err = run_cli(capsys, "parse", tmp_path / "one.png", "--run", random_run,
                           "--out", tmp_path / "a_file" / "out", "--no-progress")
    assert_message(code, err, "parse", str(tmp_path / "a_file"))


def test_parse_writes_cutouts_masks_and_rle_of_the_classes_asked_for(tmp_path, random_run, capsys):
    from clothparse import rle

    folder = tmp_path / "photos"
    files = write_inputs(folder)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "parse", folder, "--run", random_run, "--out", out, "--cutouts", "--masks",
                              "--classes", "shoe,dress", "--device", "cpu", "--no-progress")
    assert code == 0 and f"parsed {len(files)} of {len(files)} images (0 failed)" in stdout
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen = set()
    for row in rows:
        info = json.loads((out / row["json"]).read_text())
        height, width = info["height"], info["width"]
        classes = set(info["classes"])
        assert classes <= {"shoe", "dress"} and set(info["garments"]) == classes == set(row["classes"].split())
        values = np.asarray(Image.open(out / row["mask"]))
        assert set(np.unique(values)) <= {0, CLASSES.index("shoe"), CLASSES.index("dress")}  # the rest: background
        for c in CLOTHING:
            assert bool(row[f"cutout_{c}"]) == bool(row[f"mask_{c}"]) == (c in classes)
        for c in classes:
            seen.add(c)
            garment = values == CLASSES.index(c)
            g = info["garments"][c]
            assert g["mask"] == row[f"mask_{c}"] == f"masks/{Path(row['file']).stem}_{c}.png"
            assert g["cutout"] == row[f"cutout_{c}"] == f"cutouts/{Path(row['file']).stem}_{c}.png"
            assert np.array_equal(rle.decode(g["rle"], height, width), garment) and g["pixels"] == garment.sum()
            binary = Image.open(out / g["mask"])
            assert binary.mode == "1" and np.array_equal(np.asarray(binary), garment)
            x0, y0, x1, y1 = g["box"]
            assert g["box"] == info["boxes"][c]
            cut = Image.open(out / g["cutout"])
            assert cut.mode == "RGBA" and cut.size == (x1 - x0, y1 - y0)
            alpha = np.asarray(cut)[..., 3]
            assert np.array_equal(alpha, np.where(garment[y0:y1, x0:x1], 255, 0))
    assert seen == {"shoe", "dress"}
    assert {p.name for p in (out / "cutouts").iterdir()} == {Path(r[f"cutout_{c}"]).name for r in rows
                                                          for c in CLOTHING if r[f"cutout_{c}"]}


def test_parse_checks_its_options_before_it_runs(tmp_path, random_run, capsys):
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(tmp_path / "one.png")
    args = ["parse", tmp_path / "one.png", "--run", random_run, "--no-progress"]
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "o1", "--classes", "pants,gown")
    assert_message(code, err, "parse", "unknown clothing class 'gown'", "top, overtop, pants, shorts, skirt, dress")
    assert not (tmp_path / "o1").exists()
    for bad in ("-1", "0", "two"):
        with pytest.raises(SystemExit) as exited:
            cli.main([str(a) for a in args] + ["--out", str(tmp_path / "o2"), "--batch-size", bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --batch-size: must be a whole number of at least 1, got {bad}" in err.replace("'", "")
        assert "Traceback" not in err and "range()" not in err
    assert not (tmp_path / "o2").exists()
    (tmp_path / "taken").write_text("")
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "taken")
    assert_message(code, err, "parse", f"the output folder {tmp_path / 'taken'} is an existing file")
    with pytest.raises(ValueError, match="batch size must be a whole number of at least 1, got -1"):
        cli._module("parser.files").parse_files([tmp_path / "one.png"], random_run, tmp_path / "o3", batch_size=-1)


def test_parse_names_an_empty_folder_among_other_inputs(tmp_path, random_run, capsys):
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(tmp_path / "one.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("no image here")
    code, stdout, err = run_cli(capsys, "parse", tmp_path / "one.png", tmp_path / "empty", tmp_path / "texts",
                                "--run", random_run, "--out", tmp_path / "out", "--no-progress")
    assert code == 0
    assert f"warning: no images in the folder {tmp_path / 'empty'}" in err
    assert f"warning: no images in the folder {tmp_path / 'texts'}" in err
    assert "parsed 1 of 1 images (0 failed, 2 empty folders skipped)" in stdout
    # and, as before, empty and truncated image files are named and counted
    (tmp_path / "zero.jpg").write_bytes(b"")
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:200])
    code, stdout, err = run_cli(capsys, "parse", tmp_path / "one.png", tmp_path / "zero.jpg", tmp_path / "cut.jpg",
                                tmp_path / "empty", "--run", random_run, "--out", tmp_path / "out2", "--no-progress")
    assert code == 1 and "zero.jpg" in err and "cut.jpg" in err
    assert "parsed 1 of 3 images (2 failed, 1 empty folder skipped)" in stdout


def test_export_writes_and_verifies(tmp_path, random_run, capsys):
    code, stdout, _ = run_cli(capsys, "export", random_run, "--out", tmp_path / "model.pt")
    assert code == 0 and (tmp_path / "model.pt").is_file() and (tmp_path / "model.pt.json").is_file()
    assert "(torchscript)" in stdout
    diff = float(re.search(r"max \|export − eager\| = (\S+)", stdout).group(1))
    assert diff < 1e-4
    code, _, err = run_cli(capsys, "export", random_run, "--out", tmp_path / "model.zip")
    assert_message(code, err, "export", "unknown export suffix")


# --- data and train on real data ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_profile(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_data")
    return write_profile(tiny_profile(root, epochs_frozen=1, epochs_unfrozen=1), root / "tiny.yaml")


@pytest.mark.parametrize("variant", ["base", "refined"])
def test_data_says_how_many_source_images_were_skipped(variant, data_profile, capsys):
    from clothparse.datasets.prepare import prepare

    code, stdout, _ = run_cli(capsys, "data", "--profile", data_profile, "--variant", variant)
    assert code == 0
    line = stdout.strip().splitlines()[-1]
    prepared = prepare(load_profile(data_profile), variant=variant, progress=False)
    n = len(prepared.store)
    said = re.fullmatch(rf"tiny: {n} images in store {prepared.store.meta['key'][:12]} \((.+)\); "
                        r"(?:(\d+) of (\d+) source images skipped — reasons in (.+)|none of (\d+) source images "
                        r"skipped); split train (\d+), valid (\d+), test (\d+)", line)
    assert said, line
    skipped, total = (int(said[2]), int(said[3])) if said[2] else (0, int(said[5]))
    assert total == 40 and skipped == total - n  # the profile's 40 synthetic images: kept or skipped
    if skipped:
        assert Path(said[4]).is_file()
    assert sum(int(v) for v in said.groups()[-3:]) == n
    if variant == "base":  # a Prepared without its counts: the same numbers, read from the store's meta.json
        import dataclasses

        bare = dataclasses.replace(prepared, n_source_images=0, n_skipped=0, skips_path=None)
        assert cli.data_summary("tiny", bare) == line


def test_train_refuses_pickled_files(data_profile, tmp_path, capsys):
    """Encoder weights and a resume checkpoint holding pickled objects: refused, named, nothing run."""
    from clothparse.datasets.prepare import prepare

    marker = tmp_path / "executed"
    evil = write_pickle_payload(tmp_path / "encoder.pt", marker)
    code, _, err = run_cli(capsys, "train", "--profile", data_profile, "--model", "unet",
                           "--set", f"encoder_weights={evil}")
    assert_message(code, err, "train", f"{evil}: {REFUSAL}")

    profile = load_profile(data_profile)
    prepared = prepare(profile, progress=False)
    run = RunDir.for_training(profile, "unet", "refined", prepared.store.meta["key"])
    run.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    write_pickle_payload(run.checkpoint_path, marker)
    run.checkpoint_state_path.write_text(json.dumps({"phase": 2, "epochs_done": 0, "history": []}))
    code, _, err = run_cli(capsys, "train", "--profile", data_profile, "--model", "unet")
    assert_message(code, err, "train", f"{run.checkpoint_path}: refused to load", "pickled Python objects")
    assert not marker.exists() and not run.is_complete()


def test_evaluate_prints_the_papers_and_the_peers_numbers_then_the_folder(tmp_path, capsys, monkeypatch):
    from clothparse.evaluation import evaluate as evaluation
    from clothparse.evaluation.metrics import iou_summary

    folder = tmp_path / "run" / "evaluation" / "test"
    folder.mkdir(parents=True)
    summary = iou_summary(np.diag([60, 20, 10, 5, 5, 0, 0, 0, 0]) + 1)
    (folder / "metrics.json").write_text(json.dumps({"split": "test", "n_images": 8, "variants": {"plain": summary}}))
    monkeypatch.setattr(evaluation, "evaluate", lambda run_dir, **kw: folder)
    code, out, _ = run_cli(capsys, "evaluate", tmp_path / "run")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "test split, 8 images, no prior:" and lines[-1] == str(folder)
    for label, key in (("pixel accuracy", "pixel_accuracy"), ("mean IoU with background", "mean_overall"),
                       ("mean IoU excl. background", "mean_excl_bg"),
                       ("IoU excl. background, pooled", "pooled_excl_bg")):
        line = next(x for x in lines if x.startswith(label))
        assert line.endswith(f"{summary[key]:.2f} %"), line


# --- outputs that never overwrite each other, Ctrl-C, overlapping folders, moved runs ---------------------------
def run_cli_interrupted(capsys, *argv) -> tuple[int, str, str]:
    """:func:`run_cli` where Ctrl-C escaping ``cli.main`` is a failure of the test, not the end of pytest's run."""
    try:
        return run_cli(capsys, *argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped cli.main (a traceback for the user)")


def _rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_stems_in_several_folders_write_their_own_files(tmp_path, random_run, capsys):
    sizes = {"A/same.jpg": (40, 30), "B/same.jpg": (50, 36), "C/same-2.jpg": (44, 32)}
    for name, (h, w) in sizes.items():
        (tmp_path / name).parent.mkdir()
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(tmp_path / name)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "parse", *[tmp_path / n for n in sizes], "--run", random_run, "--out", out,
                              "--no-progress", "--workers", 0)
    assert code == 0 and "parsed 3 of 3" in stdout
    rows = _rows(out)
    assert len({r["json"] for r in rows}) == len({r["mask"] for r in rows}) == 3
    for row in rows:  # each row's files hold that photo's result
        info = json.loads((out / row["json"]).read_text())
        assert info["source"] == str(Path(row["file"]).resolve())
        assert (info["height"], info["width"]) == sizes[str(Path(row["file"]).relative_to(tmp_path))]
        assert Image.open(out / row["mask"]).size[::-1] == (info["height"], info["width"])


@pytest.mark.parametrize("classes", ["", ",", " , "])
def test_classes_that_name_no_class_are_a_usage_error(classes, tmp_path, random_run, capsys):
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(SystemExit) as usage:
        cli.main(["parse", str(tmp_path / "one.png"), "--run", str(random_run), "--out", str(tmp_path / "out"),
                  f"--classes={classes}"])
    assert usage.value.code == 2 and "names no class" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    from clothparse.parser.files import parse_files

    with pytest.raises(ValueError, match="names no class"):
        parse_files([tmp_path / "one.png"], random_run, tmp_path / "out", classes=classes)


def test_an_output_folder_inside_the_input_folder_is_not_parsed_again(tmp_path, random_run, capsys):
    photos = tmp_path / "photos"
    write_inputs(photos)
    n = len(list(photos.iterdir()))
    for _ in range(2):  # the second run finds the first one's masks and overlays among the photos
        code, stdout, err = run_cli(capsys, "parse", photos, "--run", random_run, "--out", photos, "--masks",
                                    "--no-progress")
        assert code == 0 and f"parsed {n} of {n} images" in stdout, stdout + err
    assert f"{2 * n} earlier outputs skipped" in stdout and f"skipped {2 * n} files" in err
    assert len(_rows(photos)) == n and not list(photos.glob("*_mask_mask.png"))
    code, _, err = run_cli(capsys, "parse", photos / "*_mask.png", "--run", random_run, "--out", photos)
    assert_message(code, err, "parse", "no images in", f"{n} earlier outputs of clothparse parse skipped")


def test_ctrl_c_during_parse_leaves_whole_files_a_summary_and_exit_130(tmp_path, random_run, capsys, monkeypatch):
    from clothparse.parser.parse import Parser

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (60, 40, 3), dtype=np.uint8)).save(
            photos / f"p{i}.png")
    # the first image writes its mask, overlay and per garment a cut-out and a mask; Ctrl-C comes while the
    # second image's overlay is being written, after a few of its bytes reached the disk
    n_first = 2 + 2 * len(Parser(run=random_run, device="cpu")(photos / "p0.png")[0].classes)
    saves, real_save = [], Image.Image.save

    def save(self, fp, *args, **kwargs):
        saves.append(fp)
        if len(saves) == n_first + 2:
            Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 25)
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    out = tmp_path / "out"
    code, stdout, err = run_cli_interrupted(capsys, "parse", photos, "--run", random_run, "--out", out, "--cutouts",
                                            "--masks", "--no-progress", "--workers", 0)
    assert code == 130 and stdout == "", stdout
    assert err.strip().splitlines() == [f"clothparse parse: interrupted after 1 of 3 images; {out / 'summary.csv'} "
                                        "lists what was written"], err
    rows = _rows(out)
    assert [Path(r["file"]).name for r in rows] == ["p0.png"] and rows[0]["status"] == "ok"
    written = [p for p in out.rglob("*") if p.is_file()]
    for p in written:
        if p.suffix in (".png", ".jpg"):
            Image.open(p).load()  # every image is whole
    # what summary.csv lists, nothing else: no temporary file, nothing of the interrupted image
    assert {p.relative_to(out).as_posix() for p in written} == {
        "summary.csv", *[v for k, v in rows[0].items() if v and k in ("mask", "overlay", "json")
                         or k.startswith(("cutout_", "mask_")) and v]}
    assert len(written) == 1 + n_first + 1


def test_ctrl_c_during_training_is_one_line_and_exit_130(data_profile, capsys, monkeypatch):
    from fastai.learner import Learner

    def fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Learner, "fit", fit)  # fit_one_cycle's own loop
    code, _, err = run_cli_interrupted(capsys, "train", "--profile", data_profile, "--model", "unet", "--set",
                                       "train.epochs_frozen=0")
    assert code == 130
    assert err.strip().splitlines()[-1] == ("clothparse train: interrupted; rerun the same command to resume from the "
                                            "last complete epoch") and "Traceback" not in err


@pytest.mark.parametrize("key, value, says", [("train.lr_max", -1, "must be positive"),
                                              ("train.lr_max", 0, "must be positive"),
                                              ("train.wd", -0.1, "must be ≥ 0"),
                                              ("train.lr_max", ".nan", "must be a finite number"),
                                              ("train.epochs_unfrozen", -1, "must be ≥ 0"),
                                              ("train.batch_size", 0, "must be positive")])
def test_train_settings_out_of_range_are_refused_before_any_work(key, value, says, tmp_path, capsys):
    profile = write_profile(tiny_profile(tmp_path), tmp_path / "tiny.yaml")
    code, _, err = run_cli(capsys, "train", "--profile", profile, "--model", "unet", "--set", f"{key}={value}")
    assert_message(code, err, "train", f"{key}: {says}")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "work").exists()


def test_a_copied_run_folder_is_still_that_run(tmp_path, random_run, capsys):
    import shutil

    from clothparse.runs import run_id, training_params

    profile = load_profile(tiny_profile(tmp_path))
    params = {**training_params(profile, "extended_unet", "refined"), "store_key": "abc123", "classes": list(CLASSES),
              "normalisation": "imagenet", "profile": profile.name, "profile_full": profile.to_dict()}
    trained = tmp_path / "runs" / run_id("extended_unet", training_params(profile, "extended_unet", "refined"),
                                         "abc123")
    trained.mkdir(parents=True)
    shutil.copy(random_run / "model.safetensors", trained)
    (trained / "params.json").write_text(json.dumps(params))
    RunDir(trained).mark_complete()
    best = shutil.copytree(trained, tmp_path / "best")
    assert RunDir(best).is_complete() and RunDir(best).key == trained.name
    code, stdout, err = run_cli(capsys, "export", best, "--package", tmp_path / "pkg")
    assert code == 0 and "max |package − run| = 0" in stdout, err
    assert json.loads((tmp_path / "pkg" / "config.json").read_text())["run"]["id"] == trained.name
    # a run whose params.json no longer says what its marker was written for says what differs
    (best / "params.json").write_text(json.dumps({**params, "store_key": "other"}))
    code, _, err = run_cli(capsys, "export", best, "--package", tmp_path / "pkg2")
    assert_message(code, err, "export", f"its COMPLETE marker is for run {trained.name}, not ")
