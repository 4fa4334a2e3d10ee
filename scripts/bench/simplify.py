"""Exact simplification of long programs: near-linear now, against the link-by-link rewrite
it replaced, side by side (prints the ratio).

A chain ``t_i = t_{i-1} * c_i`` of N statements is merged by ``_merge_constant_chains`` in
one rebuild; the old way (``global_pass`` alone: one rewrite, one graph copy, a scan from
the start) took O(N^2) copies. Also a mixed chain (``* m`` and ``+ g``: nothing to merge).

    python scripts/bench/simplify.py [--sizes 400 800 1600 3200]
"""

import argparse
import time

from optevo.dsl import parse
from optevo.simplify import exact
from optevo.simplify.graph import Graph


def chain(n: int, mixed: bool = False) -> str:
    body = [f"  t{i} = t{i - 1} + g" if mixed and i % 3 == 0 else
            f"  t{i} = t{i - 1} * m" if mixed else
            f"  t{i} = t{i - 1} * {1.5 if i % 2 else 0.7}" for i in range(1, n)]
    return "\n".join(["def train(w, g, m, v, lr):", "  t0 = g * 2.0", *body,
                      f"  update = t{n - 1} * lr", "  return update, m, v"]) + "\n"


def old_way(program):
    """One round of the link-by-link pass (what simplify_exact did before)."""
    return exact.global_pass(Graph.from_program(program)).to_program()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 800, 1600, 3200])
    ap.add_argument("--old-up-to", type=int, default=1600, help="skip the old way above")
    args = ap.parse_args()
    print(f"{'N':>6} {'kind':>6} {'ours s':>8} {'old s':>8} {'ratio':>7}  statements after")
    for n in args.sizes:
        for mixed in (False, True):
            p = parse(chain(n, mixed))
            t = time.perf_counter()
            ours = exact.simplify_exact(p)
            t_ours = time.perf_counter() - t
            t_old = None
            if n <= args.old_up_to and not mixed:
                t = time.perf_counter()
                old_way(p)
                t_old = time.perf_counter() - t
            ratio = f"{t_old / t_ours:7.0f}" if t_old else "      -"
            old = f"{t_old:8.2f}" if t_old else "       -"
            print(f"{n:>6} {'mixed' if mixed else 'const':>6} {t_ours:8.3f} {old} {ratio}  "
                  f"{len(ours.stmts)}", flush=True)


if __name__ == "__main__":
    main()
