"""Planted rediscovery: on a task where sign-momentum truly wins, do searches from AdamW find a
sign-based program? (A check of the machinery, as AutoML-Zero's linear-regression demo; it
claims nothing about Lion in general.)

The task (configs/planted.yaml): ``binary_regression``, under-determined least squares whose
answer is a corner of the box |x_i| <= 100, drawn per seed. A sign update with decoupled
weight decay 0.01 stays in that box (Lion-K), so tuned Lion beats tuned optax AdamW there by
far, and programs that ignore the gradient lose (``scripts/sign_vs_adamw.py
binary_regression``, tests/test_synthetic_options.py). Each search starts from the AdamW
start program with its own seed. Its best program on fresh seeds (the held-out re-check) is
simplified by the exact passes, and it counts as found when an update-feeding ``sign(...)``
reads both the gradient and a live state slot (the sign of an interpolation of ``g`` and
momentum, as in signum and Lion), after dead code is gone.

    python scripts/planted_rediscovery.py --searches 5 --minutes 5
    python scripts/planted_rediscovery.py --paper-mutations --out runs/planted-paper
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

from optevo.dsl import parse
from optevo.dsl.liveness import live_state
from optevo.search.core.config import load_config
from optevo.search.core.run import run_search
from optevo.search.core.rundir import RunDir
from optevo.simplify import simplify_exact


def reads(program, name: str, upto: int) -> set:
    """The inputs that variable ``name`` (as defined before statement ``upto``) depends on."""
    for i in range(upto - 1, -1, -1):
        s = program.stmts[i]
        if s.target == name:
            return set().union(*[reads(program, a, i) for a in s.vars()] or [set()])
    return {name}


def sign_of_momentum(program) -> bool:
    """Does a ``sign`` of something that reads ``g`` and a live state slot feed the update?"""
    p = simplify_exact(program)
    live = live_state(p)
    for i, s in enumerate(p.stmts):
        if s.op == "sign":
            deps = reads(p, s.args[0], i)
            if "g" in deps and deps & set(live) and s.target in _needed(p):
                return True
    return False


def _needed(program) -> set:
    """Variables the update reads, transitively (by name)."""
    need, out = {program.returns[0]}, set()
    for s in reversed(program.stmts):
        if s.target in need:
            out.add(s.target)
            need |= set(s.vars())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/planted.yaml")
    ap.add_argument("--searches", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=5.0, help="search time per seed")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default="runs/planted")
    ap.add_argument("--paper-mutations", action="store_true",
                    help="only the paper's four mutations (no wrap)")
    args = ap.parse_args(argv)
    rows = []
    for seed in range(args.searches):
        over = {"seed": seed, "search.time_limit": args.minutes * 60}
        if args.workers is not None:
            over["workers.count"] = args.workers
        if args.paper_mutations:
            over["search.mutations"] = {"insert": 1.0, "delete": 1.0, "change_arg": 1.0,
                                        "scale_const": 1.0, "wrap": 0.0}
        cfg = load_config(args.config, over)
        run_dir = Path(args.out) / f"seed{seed}"
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            run_search(cfg, run_dir, resume=RunDir(run_dir).exists())
        wall = time.perf_counter() - t0
        s = RunDir(run_dir).summary()
        best = next((r for r in s["holdout"] if r["id"] == s["best_id"]), None)
        program = parse(best["program"]) if best else None
        rows.append({"seed": seed, "trained": s["trained"], "best_id": s["best_id"],
                     "best_normalized": s["best_normalized"],
                     "diff_vs_tuned_adamw": s["diff_vs_tuned_adamw"],
                     "diff_vs_tuned_adamw_stderr": s["diff_vs_tuned_adamw_stderr"],
                     "found": bool(program) and sign_of_momentum(program),
                     "wall_seconds": round(wall, 1),
                     "simplified": best["simplified"] if best else None})
        print(json.dumps(rows[-1]), flush=True)
    (Path(args.out) / "planted.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{sum(r['found'] for r in rows)}/{len(rows)} searches found a sign of momentum "
          f"({args.minutes:g} min of search each, {args.config}"
          f"{', paper mutations only' if args.paper_mutations else ''})\n")
    print("| seed | trained | wall s | best (x tuned start, selection seeds) | held-out diff vs "
          "tuned AdamW | sign of momentum |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        d = "—" if r["diff_vs_tuned_adamw"] is None else \
            f"{r['diff_vs_tuned_adamw']:+.4f} ± {r['diff_vs_tuned_adamw_stderr']:.4f}"
        print(f"| {r['seed']} | {r['trained']} | {r['wall_seconds']:.0f} | "
              f"{r['best_normalized']:.3g} | {d} | "
              f"{'yes' if r['found'] else 'no'} |")
    for r in rows:
        print(f"\nseed {r['seed']} (id {r['best_id']}):\n```python\n{r['simplified']}```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
