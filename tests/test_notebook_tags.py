"""The notebooks follow the book's cell-tag convention (clothparse/book.py's docstring): papermill still finds
each parameters cell, set-up code is removed from the pages, and the runner hides papermill's own cell."""
import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from clothparse.book import steps as book_steps
from clothparse.book.steps import NOTEBOOKS

#: the notebooks that follow the convention so far (train, evaluate, results follow it when their owners do)
TAGGED = ["architecture", "data", "refinement", "injection", "qualitative", "parser", "evidence"]


def _code_cells(name):
    return [c for c in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", TAGGED)
def test_every_code_cell_is_tagged(name):
    cells = _code_cells(name)
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "remove-cell" in params[0].metadata["tags"], name
    setup = [c for c in cells if c.metadata.get("tags") == ["remove-cell"]]
    assert setup and any("load_profile(profile)" in c.source for c in setup), f"{name}: no set-up cell"
    for c in cells:
        tags = c.metadata.get("tags", [])
        assert "remove-cell" in tags or "hide-input" in tags, f"{name}: untagged cell {c.id}"
        if "hide-input" in tags:   # set-up lives in the removed cells only
            assert "import " not in c.source and "load_profile(" not in c.source, f"{name}: {c.id} mixes set-up in"


@pytest.mark.parametrize("name", TAGGED)
def test_papermill_injects_after_the_parameters_cell_and_the_runner_hides_it(name):
    nb = load_notebook_node(str(NOTEBOOKS / f"{name}.ipynb"))   # as papermill reads it
    nb = parameterize_notebook(nb, {"profile": "smoke"}, kernel_name="python3", language="python")
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    assert len(injected) == 1 and "parameters" in tags[injected[0] - 1], f"{name}: papermill lost the parameters cell"
    book_steps._hide_injected_parameters(nb)
    assert "remove-cell" in nb.cells[injected[0]].metadata["tags"]
