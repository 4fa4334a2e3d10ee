"""Look inside a finished (or running) search: the data behind ``optevo show RUN_DIR``,
``lineage``, ``diff`` (and ``plot``, in ``plot.py``).

Everything reads the run directory through :class:`~optevo.search.core.rundir.RunDir`;
program text is parsed with ``ast`` (``optevo.dsl.parse``), never executed. A bad run
directory, an unknown id or a missing file raises a one-line
:class:`~optevo.search.core.rundir.RunDirError`.

A program reference (``diff``, ``export``) is a program file or ``RUN_DIR:ID``.
"""

from __future__ import annotations

import difflib
import json
import math
import sys
from pathlib import Path
from typing import Dict, List

from optevo.dsl import parse
from optevo.dsl.files import check_regular
from optevo.dsl.library import find_program, library_names
from optevo.dsl.liveness import NO_LR, reads_lr
from optevo.simplify import simplify_exact

from .rundir import RunDir, RunDirError, best_distinct, hash_counts


def split_ref(ref: str):
    """(RUN_DIR, ID) of a reference ``RUN_DIR:ID``; (None, None) for anything else."""
    head, sep, tail = str(ref).rpartition(":")
    return (head, tail) if sep and Path(head).is_dir() else (None, None)


def load_ref(ref: str):
    """The one way to name a program everywhere (eval, show, simplify, export, diff, analyze,
    funnel): a program file, a library name (``lion``) or ``RUN_DIR:ID``; returns (program,
    label). Anything else is one line listing what it could have been. Its run's tuning:
    ``tuned.load_tuned``."""
    head, tail = split_ref(ref)
    if head is not None:
        rec = RunDir.existing(head).record(tail)
        return parse(rec.program), f"{head}:{rec.id}"
    if not Path(ref).is_dir():
        try:
            check_regular(ref)  # a FIFO would block the read for ever
        except OSError as e:
            raise RunDirError(f"{ref}: {e.strerror}; name a program file, a library program "
                              "or RUN_DIR:ID") from None
    if not Path(ref).is_file() and str(ref) not in library_names():
        close = difflib.get_close_matches(str(ref), library_names(), n=1, cutoff=0.6)
        raise RunDirError(f"{ref}: no such program file, library program or RUN_DIR:ID"
                          + (f" (did you mean {close[0]}?)" if close else
                             f"; library: {', '.join(library_names())}"))
    return find_program(ref), str(ref)


def fmt(x, spec=".4f", none="—") -> str:
    return none if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else format(x, spec)


# --- show -----------------------------------------------------------------------------------

def best_programs(run_dir, top: int = 5) -> List[Dict]:
    """The ``top`` best distinct programs (by hash; lowest loss among trained records),
    simplified by the exact passes, with their held-out figures where there are any."""
    run = RunDir.existing(run_dir)
    records = run.nonempty_records()
    count = hash_counts(records)
    hold_by_id = {h["id"]: h for h in run.holdout_rows()}
    hold_by_hash = {h.get("hash"): h for h in hold_by_id.values()}
    rows = []
    for rank, r in enumerate(best_distinct(records, top), 1):
        program = parse(r.program)
        simple = simplify_exact(program)
        h = hold_by_id.get(r.id) or hold_by_hash.get(r.hash) or {}
        rows.append({
            "rank": rank, "id": r.id, "hash": r.hash, "loss": r.loss,
            "stderr": r.stderr, "normalized": r.normalized,
            "count": count[r.hash], "statements": len(program),
            "simplified_statements": len(simple),
            "holdout": h.get("holdout"), "holdout_stderr": h.get("holdout_stderr"),
            "diff": h.get("diff"), "diff_stderr": h.get("diff_stderr"),
            "program": simple.text(), "original": r.program,
            "reads_lr": reads_lr(program),
        })
    return rows


def show_run(run_dir, top: int = 5, as_json: bool = False, file=None) -> int:
    """Print the best ``top`` distinct programs of a run, simplified; returns 0."""
    file = file or sys.stdout
    rows = best_programs(run_dir, top)
    if as_json:
        for row in rows:
            print(json.dumps(row), file=file)
        return 0
    records = RunDir(run_dir).records()
    n_cached = sum(1 for r in records if r.cached)
    n_div = sum(1 for r in records if r.loss is None)
    print(f"{run_dir}: {len(records)} evaluations ({len(records) - n_cached} trained, "
          f"{n_cached} cached, {n_div} diverged); best {len(rows)} distinct programs",
          file=file)
    for row in rows:
        line = (f"#{row['rank']}  id {row['id']}  loss {fmt(row['loss'])} ± "
                f"{fmt(row['stderr'])}  normalized {fmt(row['normalized'], '.3f')}  "
                f"hash {row['hash']} x{row['count']}" + ("" if row["reads_lr"] else NO_LR))
        if row["holdout"] is not None:
            line += (f"  held-out {fmt(row['holdout'])} ± {fmt(row['holdout_stderr'])} "
                     f"(vs start {fmt(row['diff'], '+.4f')} ± {fmt(row['diff_stderr'])})")
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
    """The chain from the start program (parent null) to evaluation ``ident``, as records;
    an ancestor missing from the log ends the chain as ``{"id": ..., "missing": True}``."""
    run = RunDir.existing(run_dir)
    rec = run.record(ident)
    index = {r.id: r for r in run.records()}
    chain = [rec.to_json()]
    seen = {rec.id}
    while chain[-1].get("parent") is not None:
        parent = chain[-1]["parent"]
        if parent in seen:
            raise RunDirError(f"{run_dir}: the log has a parent cycle at id {parent}")
        if parent not in index:
            chain.append({"id": parent, "missing": True})
            break
        seen.add(parent)
        chain.append(index[parent].to_json())
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
            f"loss {r['loss']:.4f}  normalized {fmt(r.get('normalized'), '.3f')}"
        what = "start" if r.get("parent") is None else f"{r.get('mutation')} of {r['parent']}"
        cached = "  (cached)" if r.get("cached") else ""
        print(f"id {r['id']:>6}  {what:<24} {fit}{cached}", file=file)
        if programs:
            print("\n".join("    " + x for x in r["program"].rstrip().split("\n")), file=file)
        elif prev is not None:
            print(f"            {change_line(prev['program'], r['program'])}", file=file)
        prev = r
    return 0


# --- diff -----------------------------------------------------------------------------------

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
