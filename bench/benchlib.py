"""The benchmark registry: ``@bench("name")`` registers a function that returns result rows.

A bench function takes ``quick: bool`` (smaller sizes, for a smoke run) and returns a list of
:class:`Row`. ``bench/run.py`` imports every ``bench/bench_*.py`` and prints the rows as one table,
so a new benchmark is a new ``bench_<topic>.py`` file with decorated functions; nothing else changes.

Run-wide options (``bench/run.py --device/--size/--batch/--model/--iters/--rounds/--threads``) land in
:data:`OPTIONS`; a bench reads them with :func:`option`, which falls back to the environment variable
``CLOTHPARSE_BENCH_<NAME>`` (e.g. ``CLOTHPARSE_BENCH_DEVICE=cuda``) and then to the bench's own default.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Row", "bench", "BENCHES", "best_time", "OPTIONS", "option", "parse_size", "parse_ints", "parse_int",
           "parse_names"]


@dataclass
class Row:
    """One measured number: ``case`` (what was measured), ``value`` in ``unit``, a free ``note``."""

    case: str
    value: float
    unit: str
    note: str = ""


#: name → (function, one-line description)
BENCHES: dict[str, tuple[Callable[[bool], list[Row]], str]] = {}


def bench(name: str, description: str = "") -> Callable:
    """Register ``fn(quick: bool) -> list[Row]`` under ``name`` (names are unique)."""

    def register(fn: Callable[[bool], list[Row]]) -> Callable[[bool], list[Row]]:
        if name in BENCHES and BENCHES[name][0] is not fn:
            raise ValueError(f"benchmark {name!r} is registered twice "
                             f"({BENCHES[name][0].__module__} and {fn.__module__})")
        doc = (fn.__doc__ or "").strip()
        BENCHES[name] = (fn, description or (doc.splitlines()[0] if doc else ""))
        return fn

    return register


def best_time(fn: Callable[[], object], repeat: int = 3, min_seconds: float = 0.2) -> float:
    """Seconds per call of ``fn``: best of ``repeat`` rounds, each looping until ``min_seconds`` pass.

    The best round is the least disturbed by other processes on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


#: Run-wide options set by ``bench/run.py`` (parsed values; absent or None = the bench's default).
OPTIONS: dict[str, object] = {}
_PARSERS: dict[str, Callable[[str], object]] = {}


def parse_size(text: str) -> tuple[int, int]:
    """``"288x192"`` (H×W; ``x``, ``×`` or ``,``) → ``(288, 192)``."""
    m = re.fullmatch(r"\s*(\d+)\s*[x×,]\s*(\d+)\s*", str(text))
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise ValueError(f"size must be HxW, e.g. 288x192, got {text!r}")
    return int(m[1]), int(m[2])


def parse_ints(text: str) -> tuple[int, ...]:
    """``"16,64"`` → ``(16, 64)`` (positive integers)."""
    try:
        values = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"expected positive integers like 16 or 16,64, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"expected positive integers like 16 or 16,64, got {text!r}")
    return values


def parse_int(text: str) -> int:
    """``"5"`` → ``5`` (one positive integer)."""
    values = parse_ints(text)
    if len(values) != 1:
        raise ValueError(f"expected one positive integer, got {text!r}")
    return values[0]


def parse_names(text: str) -> tuple[str, ...]:
    """``"unet,extended_unet"`` → ``("unet", "extended_unet")``."""
    return tuple(v.strip() for v in str(text).split(",") if v.strip())


_PARSERS.update(size=parse_size, batch=parse_ints, model=parse_names, device=str.strip, iters=parse_int,
                rounds=parse_int, threads=parse_int)


def option(name: str, default=None):
    """A run-wide option: :data:`OPTIONS`, else ``$CLOTHPARSE_BENCH_<NAME>`` (parsed), else ``default``."""
    value = OPTIONS.get(name)
    if value is None:
        text = os.environ.get(f"CLOTHPARSE_BENCH_{name.upper()}", "").strip()
        if text:
            value = _PARSERS.get(name, str)(text)
    return default if value is None else value
