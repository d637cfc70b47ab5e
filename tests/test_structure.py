"""The package's shape: no import cycle among its modules, the parser importable without the training stack, a
top level of shared modules and stage subpackages only, and imports of its own modules at the top of a module
(the few inside functions say why)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "clothparse"

#: what the top level of clothparse/ may hold: the modules every stage shares, and the stage subpackages
TOP_LEVEL = {
    # shared modules
    "__init__.py", "categories.py", "cli.py", "devices.py", "images.py", "keyed.py", "masks.py", "profiles.py",
    "rle.py", "runs.py", "weights.py",
    # stage subpackages
    "datasets", "models", "training", "evaluation", "parser", "refine", "report", "book",
    # package data (the paper's tables, the label descriptions)
    "data",
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[ast.AST, list[str], bool]]:
    """Each import statement of a module: the node, the package's modules it names (a ``from X import y`` names
    ``X.y`` where that is a module, else ``X``), and whether it sits inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        own = []
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                own.append(target)
        if own:
            out.append((node, own, id(node) in inside))
    return out


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_modules():
    """Imports at the top and inside functions alike: a cycle hidden in a function is still two modules that
    cannot be understood (or split) one without the other."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for _, targets, _ in _imports(name, path):
            edges[name].update(targets)
    cycles = _cycles(edges)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_the_parser_imports_without_fastai_or_the_training_code():
    """``pip install clothparse`` (the parser only) has no fastai: no parser module may import it, or the
    training code that does."""
    parser_modules = sorted(n for n in MODULES if n.startswith("clothparse.parser."))
    assert {"clothparse.parser.parse", "clothparse.parser.files", "clothparse.parser.package"} <= set(parser_modules)
    code = ("import importlib, sys\n"
            f"for name in {parser_modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(' '.join(sorted(m for m in sys.modules if m == 'fastai' or m.startswith(('fastai.', "
            "'clothparse.training')))))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "", f"importing the parser modules imports {proc.stdout.strip()}"


def test_the_top_level_holds_shared_modules_and_stage_packages_only():
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    unexpected = sorted(entries - TOP_LEVEL)
    assert not unexpected, (f"clothparse/ holds {unexpected}: a stage's module belongs in its subpackage "
                            f"(or, shared by every stage, in this test's allow-list)")


def test_few_imports_of_own_modules_inside_functions_each_saying_why():
    """An import of the package's own module inside a function hides a dependency; the few that stay (an
    optional heavy package the light install must not load, a cycle they avoid) say why on their line or the
    line above."""
    inner, silent = [], []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node, _, in_function in _imports(name, path):
            if not in_function:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            inner.append(where)
            same = "#" in lines[node.lineno - 1]
            above = node.lineno >= 2 and lines[node.lineno - 2].strip().startswith("#")
            if not (same or above):
                silent.append(where)
    assert not silent, f"in-function imports of clothparse's own modules without a reason: {silent}"
    assert len(inner) < 15, f"{len(inner)} in-function imports of clothparse's own modules: {inner}"
