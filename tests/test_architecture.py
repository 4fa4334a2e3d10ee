"""Architecture rules: imports go one way, dsl < (proxy_tasks | simplify, independent of each
other) < search core < funnel < discover < CLI (so no library code imports the CLI), with
layers inside the search core and inside proxy_tasks, and nothing imports in a cycle. The
contracts live in pyproject.toml ([tool.importlinter]); this runs import-linter on them, so
the test command checks them everywhere the tests run; and it looks for a cycle of imports
between any two modules of the project (a package's ``__init__`` included), which the
sibling contracts alone would not see."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("optevo.dsl", "optevo.proxy_tasks", "optevo.simplify", "optevo.search")


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is a test dependency: pip install -e '.[test]'"
    r = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "4 kept, 0 broken" in r.stdout


def cycles(adjacency):
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in adjacency:
        if root in index:
            continue
        work = [(root, iter(adjacency[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(adjacency.get(w, ()))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycles_finds_a_cycle():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_module_imports_in_a_cycle():
    import grimp  # import-linter's graph builder
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    g = grimp.build_graph(*PACKAGES, cache_dir=None)
    adjacency = {m: sorted(g.find_modules_directly_imported_by(m)) for m in sorted(g.modules)}
    assert cycles(adjacency) == []


def private_imports(source: str):
    """``from M import _name`` in ``source``: one module taking another's private name."""
    import ast
    return [f"{n.module}.{a.name}" for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.ImportFrom) for a in n.names
            if a.name.startswith("_") and not a.name.startswith("__")]


def test_private_imports_finds_one():
    assert private_imports("from .engine import _Loop, run\nfrom x import __version__\n") \
        == ["engine._Loop"]


def test_no_module_imports_another_modules_private_name():
    files = [p for d in ("dsl", "proxy_tasks", "simplify", "search", "scripts", "tests",
                         "configs") for p in (ROOT / d).rglob("*.py")
             if "configs/programs" not in p.as_posix() and "configs/examples" not in
             p.as_posix()]
    found = {str(p.relative_to(ROOT)): private_imports(p.read_text(encoding="utf-8"))
             for p in files}
    assert {k: v for k, v in found.items() if v} == {}
