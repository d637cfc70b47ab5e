"""environment.yml, pyproject.toml and constraints.txt declare the same packages."""
import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict[str, str]:
    """The core and every extra: the conda environment is the developer's, with everything."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {_name(r): r.replace(" ", "") for r in reqs}


def test_extras_repeat_the_same_ranges():
    """A package named by several extras (book repeats train's) has one range everywhere."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    seen: dict[str, str] = {}
    for req in project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]:
        assert seen.setdefault(_name(req), req.replace(" ", "")) == req.replace(" ", ""), req


def test_the_core_is_the_parser_only():
    """`pip install clothparse` does not pull the trainer's or the book's packages (tests/test_package.py
    proves the parser runs without them)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert not core & {"fastai", "pandas", "matplotlib", "seaborn", "jupyter-book", "papermill", "ipykernel",
                       "scikit-learn", "onnx", "onnxruntime"}
    assert set(project["optional-dependencies"]["train"]) <= set(project["optional-dependencies"]["book"])


def _conda_pip() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}


def test_environment_yml_matches_pyproject():
    assert _conda_pip() == _pyproject()


def test_constraints_pin_every_declared_package_and_the_local_torch():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version.strip()
    missing = sorted(set(_pyproject()) - set(pins))
    assert not missing, f"constraints.txt lacks pins for {missing}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1.")
