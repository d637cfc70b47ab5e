"""One step of the book: a papermill execution of a notebook into ``book/notebooks/``, cached by its inputs (the
notebook, its parameters, the profile, the package and the runs it reads), its failure kept apart in
``book/failed/`` while the last good page stays. :mod:`clothparse.book.build` plans the steps and builds the
book; :mod:`clothparse.book.parallel` runs them side by side; both execute a step here.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clothparse import runs
from clothparse.keyed import KeyedFolder
from clothparse.profiles import REPO_ROOT, Profile, load_profile

__all__ = ["NOTEBOOKS", "BOOK", "OUT", "FAILED_DIR", "Step", "page_path", "running_path", "use_cached", "execute",
           "fail"]

NOTEBOOKS = REPO_ROOT / "notebooks"
BOOK = REPO_ROOT / "book"
OUT = BOOK / "notebooks"
FAILED_DIR = BOOK / "failed"


@dataclass
class Step:
    """One notebook execution of the book's plan (:func:`clothparse.book.build.plan`) and what became of it."""

    notebook: str                 # source name in notebooks/, without .ipynb
    output: str                   # path under book/notebooks/, without .ipynb
    parameters: dict
    reads: str = "nothing"        # the runs its pages derive from: nothing | model (its trained runs) | all
                                  # | parser (the runs of the profile named by parameters["parser_profile"])
    status: str = "pending"       # executed | cached | failed
    seconds: float = 0.0
    error: str = ""


def page_path(step: Step) -> Path:
    """The executed page of ``step``: ``book/notebooks/<output>.ipynb``."""
    return OUT / f"{step.output}.ipynb"


def running_path(step: Step) -> Path:
    """Where ``step`` executes before its page replaces the last good one: ``<output>.running.ipynb``."""
    out = page_path(step)
    return out.with_name(out.stem + ".running.ipynb")


def _inputs_digest(profile: Profile, step: Step) -> str:
    """The state of the runs a notebook reads (their completion markers), as the plan declares it in
    ``step.reads``; "" for notebooks that read none (a train notebook trains its run from the data).

    A model's notebooks (evaluate, injection, qualitative) read that model's trained runs — their
    evaluations derive from them; results reads every run and evaluation; the parser page reads the runs of
    the parser profile (trained apart, so a new parser run re-executes that page); a page that compares builds
    (claims, evidence: ``other_profiles``) reads those profiles' runs as well. Narrower is better: a digest
    of all markers would go stale for every notebook each time a later one trains or evaluates something."""
    if step.reads == "nothing":
        return ""
    root = profile.runs_path
    if step.reads == "model":
        pattern = f"{step.parameters['model']}-*/{runs.COMPLETE}"
    elif step.reads == "all":
        pattern = f"**/{runs.COMPLETE}"
    elif step.reads == "parser":
        root, pattern = load_profile(step.parameters["parser_profile"]).runs_path, f"*/{runs.COMPLETE}"
    else:
        raise ValueError(f"step {step.output}: reads={step.reads!r}; known: nothing, model, all, parser")
    roots = [root]
    if step.reads == "all":
        # the pages that compare builds also read the runs of the profiles named in "other_profiles"
        roots += [load_profile(other).runs_path for other in step.parameters.get("other_profiles", ())]
    if not any(r.is_dir() for r in roots):
        return ""
    h = hashlib.sha256()
    for i, r in enumerate(roots):
        for marker in sorted(r.glob(pattern)) if r.is_dir() else []:
            # the first root hashed as before, so a page comparing no other build keeps its cache key
            h.update((f"{i}:" if i else "").encode() + str(marker.relative_to(r)).encode())
            h.update(marker.read_bytes())
    return h.hexdigest()


def _step_key(step: Step, profile: Profile, package: str) -> str:
    source = (NOTEBOOKS / f"{step.notebook}.ipynb").read_bytes()
    return runs.stable_hash({"nb": hashlib.sha256(source).hexdigest(), "params": step.parameters,
                             "profile": profile.to_dict(), "package": package}, length=24)


def _cache(step: Step, key: str) -> KeyedFolder:
    """An executed page is complete for ``key`` when ``book/notebooks/<output>.key`` holds it."""
    return KeyedFolder(OUT, key, marker=f"{step.output}.key")


def use_cached(step: Step, profile: Profile, package: str, log=print) -> bool:
    """Whether the page of an execution with the step's key is there; if so the step is ``cached``."""
    out = page_path(step)
    # Upstream state enters the key of notebooks that read runs.
    cache = _cache(step, _step_key(step, profile, package) + _inputs_digest(profile, step)[:16])
    if not (out.is_file() and cache.is_complete()):
        return False
    # the page shows this execution: report its time, not the zero seconds the cache hit took
    step.status, step.seconds = "cached", float(cache.record().get("seconds", 0.0))
    log(f"  cached    {step.output}")
    return True


def execute(step: Step, profile: Profile, package: str, force: bool = False, log=print) -> Step:
    """Execute one notebook into the book's folder, unless an execution with the same key is there."""
    if not force and use_cached(step, profile, package, log=log):
        return step
    out = page_path(step)
    base_key = _step_key(step, profile, package)
    out.parent.mkdir(parents=True, exist_ok=True)
    running = running_path(step)
    log(f"  executing {step.output} {step.parameters}")
    t0 = time.perf_counter()
    try:
        _papermill(step, running)
    except Exception as err:  # papermill raises PapermillExecutionError with the cell's traceback
        return fail(step, err, time.perf_counter() - t0, log)
    step.seconds = time.perf_counter() - t0
    _finish_page(running, {**step.parameters, "seed_note": _seed_note(step.parameters)})
    os.replace(running, out)
    # Runs and evaluations this notebook wrote itself (an evaluate page evaluates its run) belong to its
    # inputs from now on: keyed on the state *before* it ran, the next build would execute it again for nothing.
    _cache(step, base_key + _inputs_digest(profile, step)[:16]).mark_complete(seconds=step.seconds,
                                                                            profile=profile.name)
    (FAILED_DIR / f"{step.output}.ipynb").unlink(missing_ok=True)
    step.status = "executed"
    log(f"  done      {step.output} in {step.seconds:.0f}s")
    return step


def _papermill(step: Step, output: Path) -> None:
    import papermill as pm  # the book extra: the planning and the tests of the book run without it

    with kernel_options() as options:
        pm.execute_notebook(str(NOTEBOOKS / f"{step.notebook}.ipynb"), str(output), parameters=step.parameters,
                            kernel_name="python3", cwd=str(REPO_ROOT), progress_bar=False,
                            request_save_on_cell_execute=True, **options)


@contextmanager
def kernel_options() -> Iterator[dict]:
    """papermill's options for a kernel that talks over unix sockets in a private temporary folder (mode 0700).

    Over TCP, ipykernel warns on stderr once per notebook that the connection is unencrypted — noise between the
    build's progress lines, about a port on localhost that only this user's kernel uses; over IPC nothing
    leaves the machine and it has nothing to warn of. The folder is short (a socket path is limited to ~100
    bytes, more than the Jupyter runtime folder under a long home leaves). Windows has no IPC transport: TCP."""
    if os.name == "nt":
        yield {}
        return
    from traitlets.config import Config  # with papermill, the book extra

    with tempfile.TemporaryDirectory(prefix="clothparse-kernel-") as tmp:
        yield {"config": Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(tmp, "kernel")}})}


def fail(step: Step, err: Exception, seconds: float, log=print) -> Step:
    """``step`` failed with ``err`` after ``seconds``: keep the last good page, move the failed execution (its
    running page, where there is one) to ``book/failed/`` for reading."""
    running, out = running_path(step), page_path(step)
    text = str(err).strip()
    step.seconds = seconds
    step.status, step.error = "failed", f"{type(err).__name__}: {text.splitlines()[-1] if text else ''}"
    failed = FAILED_DIR / f"{step.output}.ipynb"
    failed.parent.mkdir(parents=True, exist_ok=True)
    if running.is_file():
        os.replace(running, failed)
    keep = "kept the previous good result" if out.is_file() else "no earlier result"
    log(f"  FAILED    {step.output} after {step.seconds:.0f}s ({step.error}); {keep}; see {failed}")
    return step


def _seed_note(parameters: dict) -> str:
    """``{{seed_note}}`` in a title: ", seed 1" on the pages of one seed of several, else nothing."""
    return f", seed {parameters['seed']}" if parameters.get("seed") is not None else ""


def _finish_page(path: Path, parameters: dict) -> None:
    """The executed notebook as a page: parameter values put into its markdown, papermill's cell hidden."""
    import nbformat  # the book extra, as papermill

    nb = nbformat.read(str(path), as_version=4)
    _fill_placeholders(nb, parameters)
    _hide_injected_parameters(nb)
    nbformat.write(nb, str(path))


def _fill_placeholders(nb, parameters: dict) -> None:
    """Put parameter values into markdown (``{{model}}`` in a title), so each executed copy has its own title."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{{" in cell.source:
            for key, value in parameters.items():
                cell.source = cell.source.replace("{{" + key + "}}", str(value))


def _hide_injected_parameters(nb) -> None:
    """Tag papermill's ``injected-parameters`` cell ``remove-cell``: the page says its parameters in words."""
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
