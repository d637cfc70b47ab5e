"""The book's steps side by side: ``clothparse book --parallel N`` executes up to N independent notebooks at once,
each in a process of its own with one GPU (``CUDA_VISIBLE_DEVICES``) or, on CPUs, its share of the cores — so an
8-GPU node trains Table 2's models together.

A step starts once every step it depends on has finished (:func:`dependencies`), so it reads what it would read
in a sequential build and its page is the same page. The dependencies follow what a step reads
(:attr:`~clothparse.book.steps.Step.reads`, the same rule that keys its cache): the data steps run first and in order
(they write the data and stores every later step reads); a train step needs the data only; a step that reads a
model's runs (its evaluations, its injection and qualitative pages) waits for every training of that model, and
the latter two for its evaluations as well; a step that reads every run waits for everything planned before it.
A failed step is what it is in a sequential build: its page keeps the previous good result, and the steps after
it still run. Numbers equal a sequential build's bit for bit where the thread count is the same (set
``OMP_NUM_THREADS``; otherwise each worker takes ``cores // N`` threads).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from clothparse.book.steps import Step, execute, fail, use_cached
from clothparse.profiles import REPO_ROOT, Profile, load_profile

__all__ = ["dependencies", "worker_envs", "execute_parallel"]

#: the notebooks that write the data every other step reads (generation, refinement, stores, split)
DATA_NOTEBOOKS = ("data", "refinement")


def dependencies(steps: list[Step]) -> list[set[int]]:
    """For each step (by index), the indices of the steps that must finish before it starts; always earlier ones,
    so the plan's order is a valid order."""
    out: list[set[int]] = []
    data = [i for i, s in enumerate(steps) if s.notebook in DATA_NOTEBOOKS]
    for i, step in enumerate(steps):
        deps = {j for j in data if j < i}
        model = step.parameters.get("model")
        if step.reads == "model":
            # the model's trainings change its cache key (_inputs_digest); its evaluations are what the
            # model's display pages show (and would otherwise evaluate themselves, at the same time)
            kinds = ("train",) if step.notebook == "evaluate" else ("train", "evaluate")
            deps |= {j for j, s in enumerate(steps[:i]) if s.notebook in kinds and s.parameters.get("model") == model}
        elif step.reads == "all":
            deps |= set(range(i))
        out.append(deps)
    return out


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def worker_envs(workers: int) -> list[dict[str, str]]:
    """The environment of each worker slot: GPU i (round robin when there are fewer GPUs than workers), and
    ``cores // workers`` threads unless ``OMP_NUM_THREADS`` says otherwise."""
    gpus = _visible_gpus()
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))
    envs = []
    for i in range(workers):
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", threads)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        envs.append(env)
    return envs


def _slot_name(env: dict[str, str], slot: int) -> str:
    return f"gpu {env['CUDA_VISIBLE_DEVICES']}" if "CUDA_VISIBLE_DEVICES" in env else f"worker {slot}"


def execute_parallel(steps: list[Step], profile: Profile, package: str, workers: int, force: bool = False,
                     log=print) -> list[Step]:
    """Execute ``steps`` (a :func:`~clothparse.book.build.plan`) with up to ``workers`` (at least 1) at a time;
    the steps, in plan order, with their status and seconds."""
    deps, envs = dependencies(steps), worker_envs(workers)
    gpus = sorted({e["CUDA_VISIBLE_DEVICES"] for e in envs if "CUDA_VISIBLE_DEVICES" in e})
    where = f"{len(gpus)} GPU(s)" if gpus else f"{envs[0]['OMP_NUM_THREADS']} CPU thread(s) each"
    log(f"  {workers} workers, {where}")
    pending, done = list(range(len(steps))), set()
    running: dict[Future, tuple[int, int]] = {}
    free = list(range(workers))
    with tempfile.TemporaryDirectory(prefix="clothparse-book-") as tmp, ThreadPoolExecutor(workers) as pool:
        while pending or running:
            started = cached = False
            for i in [i for i in pending if deps[i] <= done]:
                if not free:
                    break
                pending.remove(i)
                if not force and use_cached(steps[i], profile, package, log=log):
                    done.add(i)
                    cached = True
                    continue
                slot = free.pop(0)
                future = pool.submit(_in_child, steps[i], profile, package, force, envs[slot], Path(tmp), log)
                running[future] = (i, slot)
                started = True
            if started:
                log("  running   " + ", ".join(f"{steps[i].output} ({_slot_name(envs[slot], slot)})"
                                               for i, slot in sorted(running.values())))
            if cached and free:  # a cached step may have made others ready
                continue
            if not running:
                if pending and not any(deps[i] <= done for i in pending):  # cannot happen: deps are earlier steps
                    raise RuntimeError(f"book: steps {[steps[i].output for i in pending]} wait on nothing that runs")
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i, slot = running.pop(future)
                steps[i] = future.result()
                done.add(i)
                free.append(slot)
            free.sort()
    return steps


def _in_child(step: Step, profile: Profile, package: str, force: bool, env: dict[str, str], tmp: Path,
              log) -> Step:
    """Execute one step in a process of its own (``python -m clothparse.book.parallel``) with ``env``; a process
    that dies without a result is the step failing, its partial page moved to book/failed/ like any other."""
    spec = tmp / f"{step.output.replace('/', '__')}.json"
    result = spec.with_suffix(".result.json")
    spec.write_text(json.dumps({"step": step.__dict__, "profile": profile.to_dict(), "package": package,
                                "force": force}))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "clothparse.book.parallel", str(spec), str(result)],
                          env={**os.environ, **env}, cwd=REPO_ROOT)
    if proc.returncode == 0 and result.is_file():
        return Step(**json.loads(result.read_text()))
    err = RuntimeError(f"the worker process exited with code {proc.returncode}")
    return fail(step, err, time.perf_counter() - t0, log)


def _child_main(spec_path: str, result_path: str) -> int:
    """In the worker process: execute the step as the sequential runner does, and write what became of it."""
    sys.stdout.reconfigure(line_buffering=True)
    spec = json.loads(Path(spec_path).read_text())
    step = execute(Step(**spec["step"]), load_profile(spec["profile"]), spec["package"], force=spec["force"])
    Path(result_path).write_text(json.dumps(step.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(*sys.argv[1:3]))
