"""The parallel book without executing a notebook: each step waits for the steps whose output it reads (data
first; a model's pages for that model's trainings and evaluations; the summaries for everything before them),
each worker gets a GPU or a share of the cores, and the scheduler runs at most N steps at once, none before
its dependencies, with cached steps skipped and the steps returned in plan order."""
import json
import threading
import time

import pytest

from clothparse import cli
from clothparse.book import build as book
from clothparse.book import parallel
from clothparse.book.build import Step
from clothparse.book.parallel import dependencies, execute_parallel, worker_envs
from clothparse.profiles import load_profile

from conftest import tiny_profile


def test_parallel_steps_wait_for_what_they_read(tmp_path):
    steps = book.plan(load_profile(tiny_profile(tmp_path), {"train.seeds": [0, 1]}))
    deps = dependencies(steps)
    named = {s.output: {steps[j].output for j in d} for s, d in zip(steps, deps)}
    assert all(j < i for i, d in enumerate(deps) for j in d)  # the plan's order is a valid order
    assert named["architecture"] == set() and named["data"] == set() and named["refinement"] == {"data"}
    # trainings need only the data: every one of them may run at once
    trains = [s.output for s in steps if s.notebook == "train"]
    assert len(trains) == 6 and all(named[t] == {"data", "refinement"} for t in trains)
    # a model's evaluation waits for every training of that model (they key its cache), not for other models'
    assert named["evaluate/extended_unet-seed1"] == {"data", "refinement", "train/extended_unet-refined",
                                                     "train/extended_unet-refined-seed1"}
    assert {t for t in named["evaluate/unet-base"] if t.startswith("train/")} == {
        "train/unet-refined", "train/unet-refined-seed1", "train/unet-base", "train/unet-base-seed1"}
    # the focus model's pages also wait for its evaluations; results and claims for everything before them
    assert {"evaluate/extended_unet", "evaluate/extended_unet-seed1"} <= named["injection"]
    assert not any(o.startswith(("train/unet", "evaluate/unet")) for o in named["qualitative"])
    assert named["results"] == {s.output for s in steps[:[s.output for s in steps].index("results")]}

def test_parallel_workers_get_a_gpu_each_or_a_share_of_the_cores(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    envs = worker_envs(3)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "5", "2"]
    assert {e["OMP_NUM_THREADS"] for e in envs} == {"3"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    envs = worker_envs(4)
    assert all("CUDA_VISIBLE_DEVICES" not in e and e["OMP_NUM_THREADS"] == "4" for e in envs)


def test_worker_envs_without_gpus_split_the_cores(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")                 # "no GPU" spelled the CUDA way
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    envs = worker_envs(3)                                            # more workers than cores: one thread each
    assert envs == [{"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}] * 3
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    assert worker_envs(1) == [{"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "7"}]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", " 0, 3 ,")
    assert [e["CUDA_VISIBLE_DEVICES"] for e in worker_envs(2)] == ["0", "3"]


def _step(notebook, output, reads="nothing", **parameters):
    return Step(notebook=notebook, output=output, parameters=parameters, reads=reads)


def hand_plan() -> list[Step]:
    return [_step("architecture", "architecture"),
            _step("data", "data"),
            _step("refinement", "refinement"),
            _step("train", "train/a", model="a"),
            _step("train", "train/b", model="b"),
            _step("train", "train/a-seed1", model="a", seed=1),
            _step("evaluate", "evaluate/a", reads="model", model="a"),
            _step("evaluate", "evaluate/b", reads="model", model="b"),
            _step("injection", "injection", reads="model", model="a"),
            _step("parse", "parse", reads="parser", parser_profile="other"),
            _step("results", "results", reads="all")]


def test_dependencies_of_a_hand_made_plan():
    steps = hand_plan()
    named = {s.output: {steps[j].output for j in d} for s, d in zip(steps, dependencies(steps))}
    data = {"data", "refinement"}
    assert named["architecture"] == set() and named["data"] == set() and named["refinement"] == {"data"}
    assert named["train/a"] == named["train/b"] == named["train/a-seed1"] == data
    assert named["evaluate/a"] == data | {"train/a", "train/a-seed1"}    # not the other model's training
    assert named["evaluate/b"] == data | {"train/b"}
    assert named["injection"] == data | {"train/a", "train/a-seed1", "evaluate/a"}
    assert named["parse"] == data                                     # another profile's runs: not this plan's
    assert named["results"] == {s.output for s in steps[:-1]}
    # a data step after others waits only for the data steps before it
    assert dependencies([_step("train", "t", model="a"), _step("data", "d")]) == [set(), set()]
    assert dependencies([]) == []


@pytest.fixture()
def fake_children(monkeypatch):
    """Steps "executed" in threads for a few milliseconds each, recording when they start and end."""
    events, lock, running = [], threading.Lock(), {"now": 0, "most": 0}

    def in_child(step, profile, package, force, env, tmp, log):
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
            events.append(("start", step.output, env.get("CUDA_VISIBLE_DEVICES")))
        time.sleep(0.02)
        with lock:
            running["now"] -= 1
            events.append(("end", step.output, None))
        return Step(**{**step.__dict__, "status": "failed" if step.output == "train/b" else "executed",
                       "seconds": 0.02})

    monkeypatch.setattr(parallel, "_in_child", in_child)
    monkeypatch.setattr(parallel, "use_cached", lambda step, profile, package, log=print: False)
    return events, running


def test_the_scheduler_runs_at_most_n_steps_and_none_before_its_dependencies(fake_children, monkeypatch):
    events, running = fake_children
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    steps, logged = hand_plan(), []
    deps = dependencies(steps)
    out = execute_parallel(steps, profile=None, package="pkg", workers=2, log=logged.append)
    assert [s.output for s in out] == [s.output for s in hand_plan()]  # plan order
    assert [s.status for s in out] == ["failed" if s.output == "train/b" else "executed" for s in out]
    assert running["most"] == 2 and logged[0] == "  2 workers, 2 GPU(s)"
    order = [name for kind, name, _ in events if kind == "start"]
    ended = [name for kind, name, _ in events if kind == "end"]
    assert sorted(order) == sorted(ended) == sorted(s.output for s in steps)  # each step once
    start_at = {name: k for k, (kind, name, _) in enumerate(events) if kind == "start"}
    for i, step in enumerate(steps):
        finished_before = {name for kind, name, _ in events[:start_at[step.output]] if kind == "end"}
        assert {steps[j].output for j in deps[i]} <= finished_before, step.output
    assert {g for kind, _, g in events if kind == "start"} == {"4", "5"}  # each worker on its own GPU
    # a failed step does not stop the steps after it (as in a sequential build)
    assert order.index("evaluate/b") > ended.index("train/b") and out[7].status == "executed"


def test_cached_steps_are_not_executed_and_unblock_the_others(fake_children, monkeypatch):
    events, running = fake_children
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def cached(step, profile, package, log=print):
        if step.notebook in ("data", "refinement", "train"):
            step.status = "cached"
            return True
        return False

    monkeypatch.setattr(parallel, "use_cached", cached)
    logged = []
    out = execute_parallel(hand_plan(), profile=None, package="pkg", workers=3, log=logged.append)
    started = [name for kind, name, _ in events if kind == "start"]
    assert sorted(started) == ["architecture", "evaluate/a", "evaluate/b", "injection", "parse", "results"]
    assert [s.status for s in out if s.notebook in ("data", "refinement", "train")] == ["cached"] * 5
    assert logged[0] == "  3 workers, 1 CPU thread(s) each" and running["most"] <= 3
    assert started[-1] == "results"


def test_workers_must_be_at_least_one(capsys):
    with pytest.raises(ValueError, match="--parallel takes a number of workers, at least 1; got 0"):
        book.build_book("smoke", parallel=0)
    assert cli.main(["book", "--profile", "smoke", "--parallel", "0"]) != 0
    assert "at least 1; got 0" in capsys.readouterr().err


def test_the_worker_process_executes_the_step_and_writes_what_became_of_it(tmp_path, monkeypatch):
    profile = load_profile(tiny_profile(tmp_path))
    step = _step("evaluate", "evaluate/unet", reads="model", model="unet")
    seen = {}

    def execute(step, profile, package, force=False):
        seen.update(step=step, profile=profile.name, package=package, force=force)
        return Step(**{**step.__dict__, "status": "executed", "seconds": 1.5})

    monkeypatch.setattr(parallel, "execute", execute)
    spec, result = tmp_path / "spec.json", tmp_path / "result.json"
    spec.write_text(json.dumps({"step": step.__dict__, "profile": profile.to_dict(), "package": "pkg",
                                "force": True}))
    assert parallel._child_main(str(spec), str(result)) == 0
    assert seen == {"step": step, "profile": "tiny", "package": "pkg", "force": True}
    assert json.loads(result.read_text()) == {**step.__dict__, "status": "executed", "seconds": 1.5}
