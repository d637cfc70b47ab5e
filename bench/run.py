"""Run the project's benchmarks and print one table: ``python bench/run.py [--only NAME] [--quick]``.

Every ``bench/bench_*.py`` is imported; its ``@bench("name")`` functions (see ``benchlib.py``) are
run in name order. Numbers only, no assertions: they depend on the machine (and on its load).
``--device/--size/--batch/--model/--iters/--rounds/--threads`` go to the benches that train
(``bench_train.py``; e.g. ``--only gpu_train --device cuda``). Works from a bare checkout: the repository
root goes first on ``sys.path``, so ``PYTHONPATH=$PWD`` is not needed and an installed clothparse is not used.
"""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
# The checkout next to bench/ is what is measured, whether or not (or wherever) clothparse is installed.
if (HERE.parent / "clothparse").is_dir() and str(HERE.parent) not in sys.path:
    sys.path.insert(1, str(HERE.parent))

import benchlib  # noqa: E402
from benchlib import BENCHES, Row  # noqa: E402


def discover() -> list[str]:
    """Import every bench_*.py next to this file; return the module names."""
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    for name in names:
        importlib.import_module(name)
    return names


def format_table(results: list[tuple[str, Row]]) -> str:
    header = ("bench", "case", "value", "unit", "note")
    rows = [(b, r.case, _fmt(r.value), r.unit, r.note) for b, r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    align = ["<", "<", ">", "<", "<"]

    def line(cells) -> str:
        return "  ".join(f"{str(c):{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _fmt(value: float) -> str:
    if value != value:  # NaN: not measured
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _show(key: str, value) -> str:
    """An option as it is typed: size 288x192, batch 16,64."""
    if isinstance(value, tuple):
        return ("x" if key == "size" else ",").join(map(str, value))
    return str(value)


def _opt(parse):
    """An argparse ``type`` that turns the parser's ValueError into a usage error."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = parse.__name__
    return convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeat or comma-separate for several)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--device", metavar="DEV", help="training benches: cpu (default), cuda, cuda:1, auto")
    parser.add_argument("--size", metavar="HxW", type=_opt(benchlib.parse_size),
                        help="training benches: input size, e.g. 288x192")
    parser.add_argument("--batch", metavar="N[,N]", type=_opt(benchlib.parse_ints),
                        help="training benches: batch size(s), e.g. 16 or 16,64")
    parser.add_argument("--model", metavar="NAME[,NAME]", type=_opt(benchlib.parse_names),
                        help="training benches: model name(s) of clothparse.models.build_model")
    parser.add_argument("--iters", metavar="K", type=_opt(benchlib.parse_int),
                        help="training benches: timed batches per round")
    parser.add_argument("--rounds", metavar="R", type=_opt(benchlib.parse_int),
                        help="training benches: alternating rounds (median reported)")
    parser.add_argument("--threads", metavar="N", type=_opt(benchlib.parse_int),
                        help="training benches: torch CPU threads (quick CPU runs default to 1)")
    args = parser.parse_args(argv)
    benchlib.OPTIONS.update({k: getattr(args, k) for k in ("device", "size", "batch", "model", "iters", "rounds",
                                                           "threads")
                             if getattr(args, k) is not None})

    discover()
    if args.list:
        for name in sorted(BENCHES):
            print(f"{name:24s} {BENCHES[name][1]}")
        return 0
    wanted = [n.strip() for spec in args.only for n in spec.split(",") if n.strip()] or sorted(BENCHES)
    unknown = [n for n in wanted if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHES)}")

    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{'quick' if args.quick else 'full'} run"
          + "".join(f", {k} {_show(k, v)}" for k, v in sorted(benchlib.OPTIONS.items())), flush=True)
    results: list[tuple[str, Row]] = []
    for name in wanted:
        fn = BENCHES[name][0]
        start = time.perf_counter()
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows = fn(args.quick)
        print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        results.extend((name, r) for r in rows)
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps([{"bench": b, **vars(r)} for b, r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
