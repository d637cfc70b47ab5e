"""The benchmark registry: ``@bench("name")`` registers a function that returns result rows.

A bench function takes ``quick: bool`` (smaller sizes, for a smoke run) and returns a list of
:class:`Row`. ``bench/run.py`` imports every ``bench/bench_*.py`` and prints the rows as one table,
so a new benchmark is a new ``bench_<topic>.py`` file with decorated functions; nothing else changes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Row", "bench", "BENCHES", "best_time"]


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
