"""``clothparse`` command line: data, train, evaluate, book, bench (and parse, where available)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_data(args) -> int:
    from .prepare import prepare
    from .profiles import load_profile

    profile = load_profile(args.profile)
    prepared = prepare(profile, variant=args.variant)
    counts = prepared.splits.value_counts()
    print(f"{profile['name']}: {len(prepared.store)} images in store {prepared.store.meta['key'][:12]} "
          f"({prepared.data_root}); split " + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("train", "valid", "test")))
    return 0


def _cmd_train(args) -> int:
    from .profiles import load_profile
    from .train import train

    overrides = {"device": args.device} if args.device else {}
    profile = load_profile(args.profile, overrides)
    run_dir = train(profile, args.model, variant=args.variant, force=args.force)
    print(run_dir)
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    out = evaluate(args.run_dir, split=args.split, prior=args.prior, hard=args.hard, force=args.force)
    print(out)
    return 0


def _cmd_book(args) -> int:
    from .book import build_book

    result = build_book(args.profile, force=args.force, build=not args.no_build)
    return 0 if result.ok else 1


def _cmd_bench(args) -> int:
    import runpy

    from .profiles import REPO_ROOT

    script = REPO_ROOT / "bench" / "run.py"
    if not script.is_file():
        print(f"benchmarks live in a checkout: {script} not found", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def _cmd_parse(args) -> int:
    from .parse import main as parse_main

    return parse_main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clothparse", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="generate/refine/store/split a profile's data")
    d.add_argument("--profile", default="default")
    d.add_argument("--variant", choices=["base", "refined"], default="refined")
    d.set_defaults(func=_cmd_data)

    t = sub.add_parser("train", help="train one model of a profile (resumes; reuses a completed run)")
    t.add_argument("--profile", default="default")
    t.add_argument("--model", required=True)
    t.add_argument("--variant", choices=["base", "refined"], default="refined")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    t.add_argument("--force", action="store_true", help="retrain even if a completed run exists")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a run folder (confusion matrix, IoUs, Table 4, injection)")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--split", default="test", choices=["train", "valid", "test"])
    e.add_argument("--prior", default=None, help='known classes, e.g. --prior="skirt,-dress" (skirt present, no dress; use = when it starts with -)')
    e.add_argument("--hard", action="store_true", help="forbid absent classes in the output")
    e.add_argument("--force", action="store_true")
    e.set_defaults(func=_cmd_evaluate)

    b = sub.add_parser("book", help="execute the notebooks with papermill and build the Jupyter Book")
    b.add_argument("--profile", default="default")
    b.add_argument("--force", action="store_true", help="re-execute every notebook")
    b.add_argument("--no-build", action="store_true", help="execute notebooks only")
    b.set_defaults(func=_cmd_book)

    be = sub.add_parser("bench", help="run the benchmarks (bench/run.py) — e.g. clothparse bench --device cuda")
    be.add_argument("rest", nargs=argparse.REMAINDER)
    be.set_defaults(func=_cmd_bench)

    try:
        from .parse import add_parser as add_parse_parser
    except ImportError:
        pass
    else:
        add_parse_parser(sub, _cmd_parse)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # argparse's REMAINDER refuses leading options (`bench --only x`): forward everything as is
        return _cmd_bench(argparse.Namespace(command="bench", rest=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        if getattr(args, "command", None) == "bench":
            raise
        print(f"clothparse {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
