"""A parser model you can hand on: a self-describing folder in the Hugging Face Hub layout.

``clothparse export RUN --package DIR`` (:func:`export_package`) writes::

    config.json          what the model is: format, model and encoder name, input size, normalisation, classes,
                         the run it came from (id, profile, data, training settings), its provenance and metrics
    model.safetensors    the run's weights (the same tensors as the run's file), with the model, encoder, input
                         size and classes in the file's own metadata
    README.md            a model card (Markdown, with the Hub's YAML header): what it parses, how to load it,
                         its test scores, where it came from
    model.onnx(.json)    only with ``--onnx``: the network as ONNX and its sidecar (:mod:`clothparse.parser.export`)

:class:`ParserPackage` is a ``huggingface_hub.ModelHubMixin`` (as smp's models are), so the names are the Hub's:
``save_pretrained(DIR)``, ``from_pretrained(DIR or "user/repo")``, and ``push_to_hub("user/repo")`` for a user
who is online. A local folder is read without the network; anything else is taken for a Hub repository id and
goes through ``huggingface_hub``'s download. The weights are read with safetensors only (no pickle), and the
model is rebuilt from ``config.json`` alone (``build_model(model, encoder_name, input_size,
encoder_weights=None)``, then the state dict): nothing is downloaded to build it.

A package is **refused**, with a :class:`PackageError` that says which, when its ``classes`` are another class
scheme than this clothparse's, when its model or encoder is unknown here, when its weights were saved for
another model, encoder, input size or class count than ``config.json`` says (the file's metadata, then every
tensor's name and shape against the rebuilt model), or when the caller asks for another input size than the
one it was trained at.

:func:`load_network` is what :class:`clothparse.parser.parse.Parser` loads: a run folder, a package folder, an ``.onnx``
file with its sidecar, or a Hub repository id, as a :class:`~clothparse.parser.backends.Network`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import ModelCard, ModelHubMixin

from clothparse import __version__
from clothparse.categories import CLASSES, CLOTHING
from clothparse.images import stats_of
from clothparse.keyed import read_json
from clothparse.models import ENCODER_NAMES, MODEL_NAMES, build_model, deployable
from clothparse.models.base import check_input_size
from clothparse.parser.backends import Network
from clothparse.parser.export import export_onnx
from clothparse.parser.model_card import model_card
from clothparse.runs import RunDir
from clothparse.weights import load_state_dict, mismatch, read_metadata, save_state_dict

__all__ = ["ParserPackage", "PackageError", "export_package", "verify_package", "load_network", "is_package",
           "package_files", "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "ONNX_NAME", "FORMAT", "FORMAT_VERSION"]

CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, ONNX_NAME = "config.json", "model.safetensors", "README.md", "model.onnx"
FORMAT, FORMAT_VERSION = "clothparse-parser", 1
#: ``owner/name`` as the Hub spells a repository id; only a string of this form that is no local path is fetched
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class PackageError(ValueError):
    """A package that cannot be used as asked (another class scheme, weights that do not fit its config, …)."""


# --- what goes into config.json -----------------------------------------------------------------------
def package_config(run_dir) -> dict:
    """``config.json`` of a finished run: enough to rebuild the model, feed it and say where it came from."""

    run = RunDir(run_dir)
    params = run.require_complete()
    if list(params.get("classes", CLASSES)) != list(CLASSES):
        raise PackageError(f"{run.path} was trained on classes {params.get('classes')}, not this package's "
                           f"{list(CLASSES)}")
    mean, std = stats_of(params.get("normalisation", "imagenet"))
    profile = params.get("profile_full") or {}
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "clothparse_version": __version__,
        "model": params["model"], "encoder_name": params.get("encoder_name", "resnet34"),
        "input_size": [int(v) for v in params["size"]],
        "classes": list(CLASSES), "clothing_classes": list(CLOTHING),
        "normalisation": {"mean": mean, "std": std, "scale": "x/255 first"},
        "run": {"id": run.key, "profile": params.get("profile"), "variant": params.get("variant"),
                "data": profile.get("data", {}).get("kind"), "store_key": params.get("store_key"),
                "encoder_weights": params.get("encoder_weights"), "train": params.get("train"),
                "split": params.get("split")},
        "provenance": read_json(run.provenance_path) if run.provenance_path.is_file() else None,
        "metrics": _metrics(run),
    }
    return config


def _with_model_facts(config: dict, model, onnx: bool) -> dict:
    return {**config, "parameters": sum(p.numel() for p in model.parameters()), "onnx": bool(onnx)}


def _metrics(run) -> dict:
    """The valid split's scores (end of training) and the test split's without a prior, where evaluated."""

    out = {}
    if run.metrics_path.is_file():
        out["valid"] = read_json(run.metrics_path).get("valid")
    evaluation = run.evaluation("test")
    if evaluation.is_complete():
        metrics = evaluation.metrics()
        out["test"] = {**metrics.get("variants", {}).get("plain", {}), "n_images": metrics.get("n_images")}
    return out


def check_config(config, source: str) -> dict:
    """``config`` if this clothparse can use it; else a :class:`PackageError` saying what differs."""

    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise PackageError(f"{source}: {CONFIG_NAME} is not a clothparse parser's (no \"format\": \"{FORMAT}\")")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise PackageError(f"{source}: package format {config['format_version']} is newer than this clothparse "
                           f"reads ({FORMAT_VERSION}); upgrade clothparse")
    missing = [k for k in ("model", "encoder_name", "input_size", "classes", "normalisation") if k not in config]
    if missing:
        raise PackageError(f"{source}: {CONFIG_NAME} lacks {', '.join(missing)}")
    if list(config["classes"]) != list(CLASSES):
        raise PackageError(f"{source}: the package's classes are {list(config['classes'])}, another class scheme "
                           f"than this clothparse's {list(CLASSES)}")
    if config["model"] not in MODEL_NAMES:
        raise PackageError(f"{source}: unknown model {config['model']!r}; this clothparse knows "
                           f"{', '.join(MODEL_NAMES)}")
    if config["encoder_name"] not in ENCODER_NAMES:
        raise PackageError(f"{source}: unknown encoder {config['encoder_name']!r}; this clothparse knows "
                           f"{', '.join(ENCODER_NAMES)}")
    try:
        check_input_size(config["input_size"])
        stats_of(config["normalisation"])
    except ValueError as err:
        raise PackageError(f"{source}: {CONFIG_NAME}: {err}") from None
    return config


def package_input_size(config: dict, input_size, source: str) -> tuple[int, int]:
    """The package's input size; a :class:`PackageError` when the caller asks for another one."""
    size = tuple(int(v) for v in config["input_size"])
    if input_size is not None and tuple(int(v) for v in input_size) != size:
        raise PackageError(f"{source} was trained at {size[0]}×{size[1]}; input_size={tuple(input_size)} differs "
                           "(its network answers at its own size only: package a run trained at the size you want)")
    return size


def _describe(model: str, encoder: str, size, n_classes) -> str:
    return f"{model} with encoder {encoder} at {size[0]}×{size[1]}, {n_classes} classes"


def weights_metadata(config: dict) -> dict[str, str]:
    """What the weights were saved for, in the safetensors header (strings only, as safetensors wants)."""
    return {"format": FORMAT, "model": config["model"], "encoder_name": config["encoder_name"],
            "input_size": "x".join(str(v) for v in config["input_size"]), "num_classes": str(len(config["classes"]))}


def check_weights(metadata: dict | None, state: dict, model, config: dict, source: str) -> None:
    """The weights fit ``config``: the file's own metadata says the same model, encoder, input size and classes,
    and every tensor's name and shape is the rebuilt model's. A :class:`PackageError` names what differs."""
    said = weights_metadata(config)
    if metadata and metadata.get("format") == FORMAT:
        wrong = [k for k in ("model", "encoder_name", "input_size", "num_classes") if metadata.get(k) != said[k]]
        if wrong:
            size = metadata.get("input_size", "?x?").split("x")
            raise PackageError(
                f"{source}: {WEIGHTS_NAME} was saved from "
                f"{_describe(metadata.get('model'), metadata.get('encoder_name'), size, metadata.get('num_classes'))}"
                f", but {CONFIG_NAME} says {_describe(config['model'], config['encoder_name'], config['input_size'], len(config['classes']))}"  # noqa: E501
                f" ({', '.join(wrong)} differ)")
    problems = mismatch(state, model.state_dict())
    if problems:
        raise PackageError(f"{source}: {WEIGHTS_NAME} does not fit {CONFIG_NAME}'s "
                           f"{_describe(config['model'], config['encoder_name'], config['input_size'], len(config['classes']))}"  # noqa: E501
                           f", tensors {problems} — another model, encoder or input size")


# --- the package ------------------------------------------------------------------------------------------
class ParserPackage(ModelHubMixin, library_name="clothparse", pipeline_tag="image-segmentation",
                    tags=["clothing-parsing", "semantic-segmentation", "pytorch", "safetensors"],
                    repo_url="https://github.com/clothparse/clothparse"):
    """A trained parser's model and its ``config.json`` (see the module docstring); ``model`` is the network as
    :func:`clothparse.models.build_model` builds it, with the run's weights, in eval mode on the CPU."""

    def __init__(self, config: dict, net=None):
        # ``net``, not ``model``: ModelHubMixin fills __init__'s parameters from config.json's keys of that name
        self.config, self.model = config, net

    @classmethod
    def from_run(cls, run_dir, onnx: bool = False) -> ParserPackage:
        """The package of a finished run (its weights as trained, its config and card; ``onnx``: the folder will
        hold ``model.onnx`` too, as the card says)."""

        model, _ = RunDir(run_dir).load_model("cpu")
        return cls(config=_with_model_facts(package_config(run_dir), model, onnx), net=model)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(int(v) for v in self.config["input_size"])

    # --- saving (ModelHubMixin's hooks) -------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        save_state_dict(self.model.state_dict(), Path(save_directory) / WEIGHTS_NAME,
                        metadata=weights_metadata(self.config))
        (Path(save_directory) / CONFIG_NAME).write_text(json.dumps(self.config, indent=2) + "\n")

    def generate_model_card(self, *args, **kwargs) -> ModelCard:

        return ModelCard(model_card(self.config, self._hub_mixin_info.model_card_data))

    # --- loading --------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> ParserPackage:
        """A package folder (read locally, no network) or a Hub repository id (``owner/name``, downloaded by
        ``huggingface_hub``; ``revision=``, ``token=``, ``cache_dir=``, ``local_files_only=`` go to it)."""
        name = os.fspath(pretrained_model_name_or_path)
        path = Path(name).expanduser()
        if path.is_dir():
            if not (path / CONFIG_NAME).is_file():
                hint = (" — it is a run folder: use it with Parser(run=...) / --run, or package it with "
                        f"clothparse export {path} --package DIR") if (path / "params.json").is_file() else ""
                raise PackageError(f"{path}: no {CONFIG_NAME}, not a clothparse package{hint}")
            read_json(path / CONFIG_NAME)  # the Hub mixin's own read does not name a malformed file
            name = str(path)
        elif path.exists() or not _REPO_ID.fullmatch(name):
            raise FileNotFoundError(f"{name}: no such package folder (nor a Hub repository id 'owner/name')")
        return super().from_pretrained(name, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         config: dict | None = None, **kwargs) -> ParserPackage:

        source = model_id
        if config is None:
            raise PackageError(f"{source}: no {CONFIG_NAME}, not a clothparse package")
        config = check_config(config, source)
        weights = _package_file(model_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir,
                                force_download=force_download, local_files_only=local_files_only, token=token)
        metadata = read_metadata(weights)
        state = load_state_dict(weights, check_finite=True)
        model = build_model(config["model"], input_size=tuple(config["input_size"]), encoder_weights=None,
                            encoder_name=config["encoder_name"])
        check_weights(metadata, state, model, config, source)
        model.load_state_dict(state)
        return cls(config=config, net=model.eval())


def _package_file(model_id: str, filename: str, **hub) -> str:
    """A file of the package: in the local folder, else downloaded from the Hub repository ``model_id``."""
    local = Path(model_id) / filename
    if Path(model_id).is_dir():
        if not local.is_file():
            raise FileNotFoundError(f"{model_id}: the package has no {filename}")
        return str(local)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id=model_id, filename=filename, **hub)


def is_package(path) -> bool:
    """A local folder with a clothparse ``config.json`` (a package, not a run folder)."""
    return Path(path).is_dir() and (Path(path) / CONFIG_NAME).is_file()


def package_files(onnx: bool = True) -> tuple[str, ...]:
    """The names of the files a package folder holds (with ``onnx``: the ONNX file and its sidecar too)."""
    return (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME) + ((ONNX_NAME, f"{ONNX_NAME}.json") if onnx else ())


def _holds_a_package(folder: Path) -> bool:
    """``folder``'s ``config.json`` is a clothparse package's (what an export may replace)."""
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def _check_target(folder: Path, force: bool) -> None:
    """A package goes into a new or empty folder, or replaces a package; any other folder only with ``force``
    (the package's README.md would replace the user's own, and their files would sit among the package's)."""
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if (folder / "params.json").is_file():
        raise FileExistsError(f"{folder} is a run folder; package into another folder")
    if force or not folder.is_dir() or _holds_a_package(folder):
        return
    others = sorted(p.name for p in folder.iterdir())
    if others:
        listed = ", ".join(others[:5]) + (f" … (+{len(others) - 5})" if len(others) > 5 else "")
        raise FileExistsError(f"{folder} is not empty and holds no clothparse package ({listed}); its "
                              f"{CARD_NAME} would be replaced by the model card: package into a new or empty "
                              "folder, or give --force to write there anyway")


# --- export and its check ---------------------------------------------------------------------------------
def export_package(run_dir, folder, onnx: bool = False, opset: int = 17, force: bool = False) -> Path:
    """Write the package of a finished run into ``folder`` (created; a package there replaced); with
    ``onnx=True`` also ``model.onnx`` and its sidecar (needs the ``onnx`` package). A folder holding other files
    than a package is refused unless ``force``.

    The ONNX file is exported first, beside the folder's files under a temporary name: a failed export leaves
    the folder as it was, never a config and card that list a ``model.onnx`` that is not there."""
    folder = Path(folder)
    _check_target(folder, force)
    package = ParserPackage.from_run(run_dir, onnx=onnx)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".onnx-", dir=folder)) if onnx else None
    try:
        if staging is not None:
            export_onnx(run_dir, staging / ONNX_NAME, opset=opset)
        for stale in (CARD_NAME, ONNX_NAME, f"{ONNX_NAME}.json"):  # save_pretrained keeps an existing card
            (folder / stale).unlink(missing_ok=True)
        package.save_pretrained(folder)
        if staging is not None:
            for name in (ONNX_NAME, f"{ONNX_NAME}.json"):
                os.replace(staging / name, folder / name)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def verify_package(run_dir, folder, batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between the package's logits (loaded back with ``from_pretrained``) and the
    run's model's on random input; the same weights in the same model make it 0."""
    import torch


    expected_model, _ = RunDir(run_dir).load_model("cpu")
    package = ParserPackage.from_pretrained(folder)
    x = torch.randn(batch, 3, *package.input_size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = deployable(expected_model).eval()(x)
        got = deployable(package.model).eval()(x)
    diffs = [float((g - e).abs().max()) for e, g in zip(expected, got) if e is not None and g is not None]
    return max(diffs)


# --- what a Parser loads ----------------------------------------------------------------------------------
def load_network(source, input_size=None, **hub) -> Network:
    """A run folder, a package folder, an ``.onnx`` file (with its sidecar) or a Hub repository id (``owner/name``
    that is no local path), as a :class:`~clothparse.parser.backends.Network`; ``input_size`` (H, W), if given, must be
    the model's own. Anything else is read as a run folder (whose errors say what is missing)."""
    name = os.fspath(source)
    path = Path(name).expanduser()
    if path.suffix.lower() == ".onnx":
        return _onnx_network(path, input_size)
    if path.is_dir() and not is_package(path) and not (path / "params.json").is_file():
        raise PackageError(f"{path} is neither a clothparse package ({CONFIG_NAME} and {WEIGHTS_NAME}: "
                           f"clothparse export RUN --package DIR) nor a run folder (params.json, {WEIGHTS_NAME} and "
                           "COMPLETE: clothparse train)")
    if is_package(path) or (not path.exists() and _REPO_ID.fullmatch(name)):
        package = ParserPackage.from_pretrained(name, **hub)
        return Network(input_size=package_input_size(package.config, input_size, name),
                       normalisation=package.config["normalisation"], model_name=package.config["model"],
                       source=str(path) if path.is_dir() else name, module=package.model)
    return _run_network(path, input_size)


def _run_network(path: Path, input_size) -> Network:

    model, params = RunDir(path).load_model("cpu")  # refuses another class scheme
    size = tuple(int(v) for v in params["size"])
    if input_size is not None and tuple(input_size) != size:
        raise ValueError(f"{path} was trained at {size[0]}×{size[1]}; input_size={tuple(input_size)} differs")
    return Network(input_size=size, normalisation=params.get("normalisation", "imagenet"),
                   model_name=params["model"], source=str(path), module=model)


def _onnx_network(path: Path, input_size) -> Network:
    """An ``.onnx`` file described by its sidecar ``<file>.json`` (:mod:`clothparse.parser.export`), else by the
    ``config.json`` of the package folder it sits in."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    sidecar, config = Path(f"{path}.json"), path.parent / CONFIG_NAME
    if sidecar.is_file():
        info = read_json(sidecar)
        classes = info.get("outputs", {}).get("seg", {}).get("classes")
        if classes is not None and list(classes) != list(CLASSES):
            raise PackageError(f"{path}: its classes are {list(classes)}, another class scheme than this "
                               f"clothparse's {list(CLASSES)}")
        size = tuple(int(v) for v in info["input"]["shape"][2:])
        normalisation = {"mean": info["input"]["mean"], "std": info["input"]["std"]}
        model_name = info.get("model", "onnx")
    elif config.is_file():
        cfg = check_config(read_json(config), str(path.parent))
        size, normalisation, model_name = tuple(cfg["input_size"]), cfg["normalisation"], cfg["model"]
    else:
        raise PackageError(f"{path}: neither its sidecar {sidecar.name} nor a {CONFIG_NAME} beside it says its "
                           "input size and normalisation; export it with clothparse export")
    size = package_input_size({"input_size": size}, input_size, str(path))
    return Network(input_size=size, normalisation=normalisation, model_name=model_name, source=str(path),
                   onnx_path=path)
