"""Look inside a finished (or running) search: ``optevo show RUN_DIR``, ``lineage``, ``plot``,
``diff``.

Everything reads the run directory's files (``evaluations.jsonl``, ``config.yaml``,
``holdout.jsonl``); program text is parsed with ``ast`` (``optevo.dsl.parse``), never
executed. A bad run directory, an unknown id or a missing file raises
:class:`optevo.search.cli.UsageError` (one line, exit status 2).

A program reference (``diff``, ``export``) is a program file or ``RUN_DIR:ID``.
"""

from __future__ import annotations

import difflib
import json
import math
import sys
from pathlib import Path
from typing import Dict, List

from .rundir import CONFIG, HOLDOUT, LOG, RunDir


def _usage(msg: str):
    from .cli import UsageError
    return UsageError(msg)


# --- reading a run --------------------------------------------------------------------------

def open_run(run_dir) -> RunDir:
    path = Path(run_dir)
    if not path.is_dir():
        raise _usage(f"{path}: no such run directory")
    if not (path / LOG).exists():
        raise _usage(f"{path}: not a run directory (no {LOG})")
    return RunDir(path)


def read_records(run_dir) -> List[Dict]:
    run = open_run(run_dir)
    try:
        records = run.list_records()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _usage(f"{run.file(LOG)}: unreadable log line ({e})") from None
    if not records:
        raise _usage(f"{run.file(LOG)}: no evaluations yet")
    return records


def by_id(records: List[Dict]) -> Dict[int, Dict]:
    return {r["id"]: r for r in records}


def _find(records: List[Dict], run_dir, ident) -> Dict:
    try:
        key = int(ident)
    except (TypeError, ValueError):
        raise _usage(f"{ident!r} is not an evaluation id (a whole number)") from None
    rec = by_id(records).get(key)
    if rec is None:
        ids = [r["id"] for r in records]
        raise _usage(f"{run_dir}: no evaluation with id {key} (ids {min(ids)}..{max(ids)})")
    return rec


def population_size(run_dir, default: int = 1000) -> int:
    p = Path(run_dir) / CONFIG
    try:
        import yaml
        cfg = yaml.safe_load(p.read_text()) or {}
        return int(cfg.get("search", {}).get("population", default))
    except Exception:  # no config, or not the expected shape: fall back
        return default


def holdout_rows(run_dir) -> List[Dict]:
    p = Path(run_dir) / HOLDOUT
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def program_of(record: Dict):
    from optevo.dsl import parse
    return parse(record["program"])


def load_ref(ref: str):
    """A program from a file, or from ``RUN_DIR:ID``; returns (program, label)."""
    from optevo.dsl import load
    head, sep, tail = str(ref).rpartition(":")
    if sep and Path(head).is_dir():
        rec = _find(read_records(head), head, tail)
        return program_of(rec), f"{head}:{rec['id']}"
    path = Path(ref)
    if not path.is_file():
        raise _usage(f"{ref}: no such program file (or RUN_DIR:ID)")
    return load(path), str(ref)


def simplify(program):
    """The simplest equivalent form: ``optevo.simplify.simplify_exact`` where it is
    available, else (or if it fails) dead code removed and the canonical form."""
    from optevo.dsl.canon import canonical_form
    from optevo.dsl.liveness import strip_dead
    try:
        try:
            from optevo.simplify import simplify_exact
        except ImportError:
            from optevo.simplify.exact import simplify_exact
    except ImportError:
        simplify_exact = None
    if simplify_exact is not None:
        try:
            out = simplify_exact(program)
            return getattr(out, "program", out)
        except Exception:  # a display tool: fall back to the plain canonical form
            pass
    return canonical_form(strip_dead(program))


def _fmt(x, spec=".4f", none="—") -> str:
    return none if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else format(x, spec)


# --- show -----------------------------------------------------------------------------------

def best_programs(run_dir, top: int = 5) -> List[Dict]:
    """The ``top`` best distinct programs (by hash; lowest loss among trained records)."""
    records = read_records(run_dir)
    count: Dict[str, int] = {}
    best: Dict[str, Dict] = {}
    for r in records:
        count[r["hash"]] = count.get(r["hash"], 0) + 1
        if r.get("cached") or r.get("loss") is None:
            continue
        if r["hash"] not in best or r["loss"] < best[r["hash"]]["loss"]:
            best[r["hash"]] = r
    hold_by_id = {h["id"]: h for h in holdout_rows(run_dir)}
    hold_by_hash = {h.get("hash"): h for h in hold_by_id.values()}
    rows = []
    for rank, r in enumerate(sorted(best.values(), key=lambda r: (r["loss"], r["id"]))[:top], 1):
        program = program_of(r)
        simple = simplify(program)
        h = hold_by_id.get(r["id"]) or hold_by_hash.get(r["hash"]) or {}
        rows.append({
            "rank": rank, "id": r["id"], "hash": r["hash"], "loss": r["loss"],
            "stderr": r.get("stderr"), "normalized": r.get("normalized"),
            "count": count[r["hash"]], "statements": len(program),
            "simplified_statements": len(simple),
            "holdout": h.get("holdout"), "holdout_stderr": h.get("holdout_stderr"),
            "diff": h.get("diff"), "diff_stderr": h.get("diff_stderr"),
            "program": simple.text(), "original": r["program"],
        })
    return rows


def show_run(run_dir, top: int = 5, as_json: bool = False, file=None) -> int:
    """Print the best ``top`` distinct programs of a run, simplified; returns 0."""
    file = file or sys.stdout
    if top < 1:
        raise _usage("--top must be at least 1")
    rows = best_programs(run_dir, top)
    if as_json:
        for row in rows:
            print(json.dumps(row), file=file)
        return 0
    records = read_records(run_dir)
    n_cached = sum(1 for r in records if r.get("cached"))
    n_div = sum(1 for r in records if r.get("loss") is None)
    print(f"{run_dir}: {len(records)} evaluations ({len(records) - n_cached} trained, "
          f"{n_cached} cached, {n_div} diverged); best {len(rows)} distinct programs",
          file=file)
    for row in rows:
        line = (f"#{row['rank']}  id {row['id']}  loss {_fmt(row['loss'])} ± "
                f"{_fmt(row['stderr'])}  normalized {_fmt(row['normalized'], '.3f')}  "
                f"hash {row['hash']} x{row['count']}")
        if row["holdout"] is not None:
            line += (f"  held-out {_fmt(row['holdout'])} ± {_fmt(row['holdout_stderr'])} "
                     f"(vs start {_fmt(row['diff'], '+.4f')} ± {_fmt(row['diff_stderr'])})")
        print("", line, f"  ({row['statements']} statements, "
              f"{row['simplified_statements']} after simplification)", sep="\n", file=file)
        print(row["program"].rstrip(), file=file)
    if not rows:
        print("(no program trained without diverging)", file=file)
    return 0


# --- lineage --------------------------------------------------------------------------------

def _stmt_lines(program) -> List[str]:
    return [s.text() for s in program.stmts] + [f"return {', '.join(program.returns)}"]


def change_line(parent_text: str, child_text: str) -> str:
    """A compact summary of what changed between two program texts (statement by statement)."""
    from optevo.dsl import parse
    a, b = _stmt_lines(parse(parent_text)), _stmt_lines(parse(child_text))
    parts = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        old, new = "; ".join(a[i1:i2]), "; ".join(b[j1:j2])
        if tag == "replace":
            parts.append(f"{i1 + 1}: {old}  ->  {new}")
        elif tag == "delete":
            parts.append(f"{i1 + 1}: - {old}")
        else:
            parts.append(f"{i1 + 1}: + {new}")
    return " | ".join(parts) or "(same text)"


def lineage_rows(run_dir, ident) -> List[Dict]:
    """The chain from the start program (parent null) to evaluation ``ident``."""
    records = read_records(run_dir)
    index = by_id(records)
    rec = _find(records, run_dir, ident)
    chain = [rec]
    seen = {rec["id"]}
    while chain[-1].get("parent") is not None:
        parent = chain[-1]["parent"]
        if parent in seen:
            raise _usage(f"{run_dir}: the log has a parent cycle at id {parent}")
        if parent not in index:
            chain.append({"id": parent, "missing": True})
            break
        seen.add(parent)
        chain.append(index[parent])
    return chain[::-1]


def lineage(run_dir, ident, programs: bool = False, file=None) -> int:
    file = file or sys.stdout
    chain = lineage_rows(run_dir, ident)
    print(f"{run_dir}: lineage of id {chain[-1]['id']} ({len(chain) - 1} mutations)", file=file)
    prev = None
    for r in chain:
        if r.get("missing"):
            print(f"id {r['id']:>6}  (not in the log: the chain stops here)", file=file)
            prev = None
            continue
        fit = "diverged" if r.get("loss") is None else \
            f"loss {r['loss']:.4f}  normalized {_fmt(r.get('normalized'), '.3f')}"
        what = "start" if r.get("parent") is None else f"{r.get('mutation')} of {r['parent']}"
        cached = "  (cached)" if r.get("cached") else ""
        print(f"id {r['id']:>6}  {what:<24} {fit}{cached}", file=file)
        if programs:
            print("\n".join("    " + x for x in r["program"].rstrip().split("\n")), file=file)
        elif prev is not None:
            print(f"            {change_line(prev['program'], r['program'])}", file=file)
        prev = r
    return 0


# --- plot -----------------------------------------------------------------------------------

def _pair(left: List[str], right: List[str]):
    """Pair the lines of a changed block: by assigned variable first (a changed argument
    lines up with its statement), the rest in order; '' where one side has nothing."""
    key = (lambda line: line.split("=")[0].strip())
    sm = difflib.SequenceMatcher(None, [key(x) for x in left], [key(y) for y in right],
                                 autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            yield (left[i1 + k] if i1 + k < i2 else "", right[j1 + k] if j1 + k < j2 else "")


def diff_text(a, b, label_a: str = "A", label_b: str = "B") -> str:
    """Two programs side by side, aligned by statement: ``|`` changed, ``<`` only in A,
    ``>`` only in B."""
    la = ["def train(w, g, m, v, lr):"] + ["  " + x for x in _stmt_lines(a)]
    lb = ["def train(w, g, m, v, lr):"] + ["  " + x for x in _stmt_lines(b)]
    width = max(len(label_a), *(len(x) for x in la))
    rows = [f"{label_a:<{width}}   {label_b}"]
    n_changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        left, right = la[i1:i2], lb[j1:j2]
        if tag == "equal":
            rows += [f"{x:<{width}}   {y}" for x, y in zip(left, right)]
            continue
        for x, y in _pair(left, right):
            n_changed += 1
            mark = "|" if x and y else ("<" if x else ">")
            rows.append(f"{x:<{width}} {mark} {y}".rstrip())
    rows.append(f"({n_changed} line{'s' if n_changed != 1 else ''} differ)" if n_changed
                else "(identical statements)")
    return "\n".join(rows) + "\n"


# --- command line ---------------------------------------------------------------------------

def add_show_arguments(p):
    """Options of ``optevo show RUN_DIR`` (added to the existing ``show`` parser)."""
    p.add_argument("--top", type=int, default=5, help="RUN_DIR: how many best programs (5)")
    p.add_argument("--json", action="store_true", help="RUN_DIR: one JSON object per program")
    return p


def cmd_lineage(args) -> int:
    return lineage(args.run_dir, args.id, programs=args.programs)


def cmd_plot(args) -> int:
    from .plot import plot_progress
    out = plot_progress(args.run_dir, args.output)
    print(out)
    return 0


def cmd_diff(args) -> int:
    a, la = load_ref(args.a)
    b, lb = load_ref(args.b)
    sys.stdout.write(diff_text(a, b, la, lb))
    return 0


def add_parser(subparsers):
    """Add ``lineage``, ``plot`` and ``diff`` to the ``optevo`` subcommands."""
    p = subparsers.add_parser("lineage", help="the ancestors of one evaluation of a run")
    p.add_argument("run_dir")
    p.add_argument("id", help="evaluation id (see optevo show RUN_DIR)")
    p.add_argument("--programs", action="store_true", help="print each ancestor's program")
    p.set_defaults(fn=cmd_lineage)

    p = subparsers.add_parser("plot", help="plot a run's search progress (PNG)")
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", help="output PNG (default RUN_DIR/progress.png)")
    p.set_defaults(fn=cmd_plot)

    p = subparsers.add_parser("diff", help="two programs side by side (files or RUN_DIR:ID)")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(fn=cmd_diff)
    return subparsers
