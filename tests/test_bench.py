"""The training benchmark runs end to end on a CPU (numbers only: no timing assertions)."""
import math
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_inference  # noqa: E402,F401  (registers "parse_cost")
import bench_train  # noqa: E402,F401  (registers "train", "loader", "gpu_train")

import benchlib  # noqa: E402


def test_train_bench_returns_positive_rates(monkeypatch):
    # the quickest setting: tiny images, 1 timed batch per round, 2 rounds, one thread
    for key, value in {"device": "cpu", "size": (32, 32), "batch": (2,), "model": ("unet",), "iters": 1,
                       "rounds": 2, "threads": 1}.items():
        monkeypatch.setitem(benchlib.OPTIONS, key, value)
    fn, description = benchlib.BENCHES["train"]
    assert description
    rows = fn(True)
    rates = [r for r in rows if r.unit == "images/s"]
    assert len(rates) == 2
    assert all(math.isfinite(r.value) and r.value > 0 for r in rates)
    ratio = [r for r in rows if r.case == "clothparse / bare"]
    assert len(ratio) == 1 and ratio[0].value > 0


def test_train_epoch_bench_returns_positive_rates(monkeypatch):
    for key, value in {"device": "cpu", "size": (32, 32), "batch": (2,), "model": ("unet",), "iters": 1,
                       "rounds": 2, "threads": 1}.items():
        monkeypatch.setitem(benchlib.OPTIONS, key, value)
    rows = benchlib.BENCHES["train_epoch"][0](True)
    rates = [r.value for r in rows if r.unit == "images/s"]
    assert len(rates) == 3 and all(math.isfinite(v) and v > 0 for v in rates)
    assert [r.unit for r in rows] == ["images/s"] * 3 + ["×"] * 2


def test_gpu_levers_bench_runs_on_a_cpu(monkeypatch):
    for key, value in {"device": "cpu", "size": (32, 32), "batch": (2,), "iters": 1, "rounds": 1,
                       "threads": 1}.items():
        monkeypatch.setitem(benchlib.OPTIONS, key, value)
    rows = benchlib.BENCHES["gpu_levers"][0](True)
    rates = {r.case.split(": ", 1)[1]: r.value for r in rows if r.unit == "images/s"}
    assert set(rates) == {"fp32 (baseline)", "channels_last", "bf16 autocast"}  # the CUDA-only ones are skipped
    assert all(math.isfinite(v) and v > 0 for v in rates.values())


def test_parse_cost_bench_prints_the_ratio_to_the_network():
    rows = benchlib.BENCHES["parse_cost"][0](True)
    by_case = {r.case: r for r in rows}
    ratio = by_case["parse / network alone"]
    assert ratio.unit == "ratio" and 0 < ratio.value < math.inf
    network, whole = (r.value for r in rows[:2])
    assert math.isclose(ratio.value, whole / network)
