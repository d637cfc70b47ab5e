"""The book's plan without executing anything: one train and one evaluate step per training seed (the first
seed's pages keep the one-seed names and parameters), every step's parameters are ones its notebook
declares, titles name the seed, and the model pages' input digest covers the runs of every seed; the summary
page's hardware; what the build prints (a progress line per step, the time left from the last executions) and
that its kernels run without ipykernel's TCP warning."""
import tempfile

import nbformat
import pytest

from clothparse.book import build as book
from clothparse.book import steps as book_steps
from clothparse.keyed import KeyedFolder
from clothparse.profiles import load_profile

from conftest import tiny_profile


def _notebook_parameters(notebook: str) -> set[str]:
    """The parameters papermill reads from the notebook (a line it cannot parse is left out, and warned of)."""
    import papermill

    return set(papermill.inspect_notebook(str(book_steps.NOTEBOOKS / f"{notebook}.ipynb")))


def _runs(steps, notebook):
    return [(s.output, s.parameters) for s in steps if s.notebook == notebook]


def test_one_seed_plans_the_pages_of_today(tmp_path):
    steps = book.plan(load_profile(tiny_profile(tmp_path)))
    assert [o for o, _ in _runs(steps, "train")] == ["train/unet-refined", "train/extended_unet-refined",
                                                     "train/unet-base"]
    assert [o for o, _ in _runs(steps, "evaluate")] == ["evaluate/unet", "evaluate/extended_unet", "evaluate/unet-base"]
    assert all("seed" not in s.parameters for s in steps)  # one-seed cache keys as they were


def test_several_seeds_plan_a_train_and_an_evaluate_step_per_seed(tmp_path):
    steps = book.plan(load_profile(tiny_profile(tmp_path), {"train.seeds": [0, 1]}))
    trains, evals = _runs(steps, "train"), _runs(steps, "evaluate")
    assert [o for o, _ in trains] == ["train/unet-refined", "train/unet-refined-seed1",
                                      "train/extended_unet-refined", "train/extended_unet-refined-seed1",
                                      "train/unet-base", "train/unet-base-seed1"]
    assert [o for o, _ in evals] == ["evaluate/unet", "evaluate/unet-seed1", "evaluate/extended_unet",
                                     "evaluate/extended_unet-seed1", "evaluate/unet-base", "evaluate/unet-base-seed1"]
    assert [p["seed"] for _, p in trains + evals] == [0, 1] * 6
    assert evals[5][1] == {"profile": "tiny", "model": "unet", "variant": "base", "seed": 1}
    assert all(s.reads == "model" for s in steps if s.notebook == "evaluate")
    assert max(i for i, s in enumerate(steps) if s.notebook == "train") < min(
        i for i, s in enumerate(steps) if s.notebook == "evaluate")
    # the display pages and the rest are planned once, without a seed
    assert [s.output for s in steps if "seed" not in s.parameters][:3] == ["architecture", "data", "refinement"]


@pytest.mark.parametrize("notebook", ["train", "evaluate"])
def test_every_planned_parameter_is_one_the_notebook_declares(tmp_path, notebook):
    declared = _notebook_parameters(notebook)
    assert "seed" in declared
    one = load_profile(tiny_profile(tmp_path))
    for profile in (one, one.replace({"train.seeds": [3, 4]})):
        for _, params in _runs(book.plan(profile), notebook):
            assert set(params) <= declared


@pytest.mark.parametrize("notebook", ["train", "evaluate"])
def test_set_up_and_parameters_are_removed_from_the_page(notebook):
    nb = nbformat.read(str(book_steps.NOTEBOOKS / f"{notebook}.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata["tags"] == ["parameters", "remove-cell"]
    assert code[1].metadata["tags"] == ["remove-cell"] and "P = load_profile(profile)" in code[1].source
    assert all(c.metadata.get("tags") == ["hide-input"] for c in code[2:])


def test_titles_name_the_seed_only_where_there_are_several(tmp_path):
    src = nbformat.read(str(book_steps.NOTEBOOKS / "train.ipynb"), as_version=4)
    for params, title in (({"model": "unet", "variant": "base"}, "# Training `unet` (base data)"),
                          ({"model": "unet", "variant": "base", "seed": 1}, "# Training `unet` (base data, seed 1)")):
        path = tmp_path / "page.ipynb"
        nbformat.write(src, str(path))
        book_steps._finish_page(path, {**params, "seed_note": book_steps._seed_note(params)})
        assert nbformat.read(str(path), as_version=4).cells[0].source.splitlines()[0] == title


def test_a_model_page_digest_covers_the_runs_of_every_seed(tmp_path):
    profile = load_profile(tiny_profile(tmp_path), {"train.seeds": [0, 1]})
    step = next(s for s in book.plan(profile) if s.output == "evaluate/unet-seed1")
    assert book_steps._inputs_digest(profile, step) == ""
    for run in ("unet-aaa", "extended_unet-ccc"):
        (profile.runs_path / run).mkdir(parents=True)
        (profile.runs_path / run / "COMPLETE").write_text('{"key": "a"}')
    first = book_steps._inputs_digest(profile, step)
    assert first
    (profile.runs_path / "unet-bbb").mkdir()
    (profile.runs_path / "unet-bbb" / "COMPLETE").write_text('{"key": "b"}')  # another seed's run completes
    assert book_steps._inputs_digest(profile, step) != first


def test_seeds_per_model_plan_a_step_per_seed_of_each_model(tmp_path):
    """train.model_seeds: unet's pages per seed; extended_unet, whose one seed is train.seed, keeps the one-seed
    pages and parameters; a model whose one seed is another passes it; Table 1's base-data run trains
    train.seeds (model_seeds are for the main variant)."""
    profile = load_profile(tiny_profile(tmp_path), {"train.model_seeds": {"unet": [0, 1, 2]}})
    steps = book.plan(profile)
    trains, evals = _runs(steps, "train"), _runs(steps, "evaluate")
    assert [o for o, _ in trains] == ["train/unet-refined", "train/unet-refined-seed1", "train/unet-refined-seed2",
                                      "train/extended_unet-refined", "train/unet-base"]
    assert [o for o, _ in evals] == ["evaluate/unet", "evaluate/unet-seed1", "evaluate/unet-seed2",
                                     "evaluate/extended_unet", "evaluate/unet-base"]
    assert [p.get("seed") for _, p in trains] == [0, 1, 2, None, None]
    other = book.plan(load_profile(tiny_profile(tmp_path), {"train.model_seeds": {"extended_unet": [4]}}))
    assert [p for o, p in _runs(other, "train") if "extended_unet" in o] == [
        {"profile": "tiny", "model": "extended_unet", "variant": "refined", "seed": 4}]
    assert book._schedule_text(profile).endswith("training seeds 0, 1, 2 (unet); seed 0 (extended_unet)")
    assert book._schedule_text(profile.replace({"loss.box": 10})).endswith(
        "; loss weights seg 1, cls 0.5, box 10 (the paper's: 1, 0.5, 75)")


def test_the_summary_page_names_the_cpu_and_its_vector_instructions(tmp_path, monkeypatch):
    from clothparse import runs

    monkeypatch.setattr(book, "GENERATED", tmp_path / "generated")
    profile = load_profile(tiny_profile(tmp_path), {"device": "cpu"})
    text = book.write_summary(profile, book.plan(profile), 60.0).read_text()
    hardware = next(line for line in text.splitlines() if line.startswith("| Hardware |"))
    assert runs.cpu_model() in hardware and runs.cpu_capability() in hardware
    assert "bit-identical only on the same kind of CPU" in hardware


# --- what the build prints -----------------------------------------------------------------------------------
def test_the_progress_line():
    assert book.progress_line(3, 24, "train/unet-refined", 245.9, 21 * 60 + 10) == \
        "[3/24] train/unet-refined — 4:05 elapsed, about 21 min left"
    assert book.progress_line(24, 24, "parser", 3725, 30) == "[24/24] parser — 62:05 elapsed, under a minute left"
    assert book.progress_line(1, 5, "architecture", 0.4, None) == "[1/5] architecture — 0:00 elapsed"


def test_the_time_left_comes_from_the_last_executions_of_the_steps(tmp_path):
    fake = [book_steps.Step("data", "data", {}), book_steps.Step("train", "train/a-refined", {}),
            book_steps.Step("train", "train/b-refined", {}), book_steps.Step("train", "train/new-refined", {}),
            book_steps.Step("results", "results", {})]
    (tmp_path / "train").mkdir()
    for page, seconds in (("data", 30.0), ("train/a-refined", 600.0), ("train/b-refined", 300.0), ("results", 90.0)):
        KeyedFolder(tmp_path, "k", marker=f"{page}.key").mark_complete(seconds=seconds)
    (tmp_path / "train" / "broken.key").write_text("{not json")
    previous = book.previous_seconds(fake, tmp_path)
    assert previous == {"data": 30.0, "train/a-refined": 600.0, "train/b-refined": 300.0, "results": 90.0}
    progress = book.Progress(fake, previous, started=100.0)
    assert progress.expected(fake[3]) == 450.0          # not executed before: the mean of its notebook's steps
    assert progress.seconds_left(0) == 30 + 600 + 300 + 450 + 90
    assert progress.seconds_left(4) == 90
    assert progress.line(1, now=160.0) == "[2/5] train/a-refined — 1:00 elapsed, about 24 min left"
    assert progress.line(4, now=1600.0) == "[5/5] results — 25:00 elapsed, about 2 min left"
    # a step of a notebook never executed counts as the mean of all known steps
    other = book.Progress([*fake, book_steps.Step("claims", "claims", {})], previous)
    assert other.expected(other.steps[-1]) == (30 + 600 + 300 + 90) / 4
    # the first build: no estimate, only the elapsed time
    first = book.Progress(fake, book.previous_seconds(fake, tmp_path / "none"), started=0.0)
    assert first.seconds_left(0) is None and first.line(0, now=5.0) == "[1/5] data — 0:05 elapsed"


def test_the_time_left_counts_only_the_same_profiles_pages(tmp_path):
    """The profiles share the pages' folder: after a CCP build the default book's estimate must not come from
    CCP's (longer) trainings and evaluations."""
    fake = [book_steps.Step("data", "data", {}), book_steps.Step("results", "results", {})]
    KeyedFolder(tmp_path, "k", marker="data.key").mark_complete(seconds=30.0, profile="default")
    KeyedFolder(tmp_path, "k", marker="results.key").mark_complete(seconds=900.0, profile="ccp")
    assert book.previous_seconds(fake, tmp_path, profile="default") == {"data": 30.0}
    assert book.previous_seconds(fake, tmp_path, profile="ccp") == {"results": 900.0}
    assert book.previous_seconds(fake, tmp_path, profile="smoke") == {}
    assert book.previous_seconds(fake, tmp_path) == {"data": 30.0, "results": 900.0}


def test_a_notebook_runs_without_the_kernels_tcp_warning(tmp_path, capfd, monkeypatch):
    pm = pytest.importorskip("papermill")

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(tmp_path / "in.ipynb"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with book_steps.kernel_options() as options:
        kernel = options["config"]["KernelManager"]
        assert kernel["transport"] == "ipc" and kernel["ip"].startswith(str(tmp_path / "tmp"))
        out = pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                  progress_bar=False, **options)
    assert out.cells[0].outputs[0]["text"].strip() == "42"
    assert "without encryption" not in capfd.readouterr().err
    assert not list((tmp_path / "tmp").iterdir())    # the kernel's sockets and their folder are gone
