"""Benchmark the functional fingerprint (``optevo.dsl.fingerprint``) as a second cache key.

1. ``--n`` children (default 3000) are drawn from the AdamW start program by the search's
   own mutations (``search.core.mutations.mutate``, default weights, max length 32) in a
   small regularized evolution: a population of ``--population`` programs (copies of the
   start at first), parents by tournament of ``--tournament`` (0: uniform, a fitness-free
   random walk), the child joins and the oldest member leaves. Every new hash is trained
   on the tiny task (``FastEngine(get_task("digits_mlp", hidden=8, batch_size=16),
   steps=60, buckets=(16, 32))``, seeds 0 and 1, at the start's calibrated lr multiplier
   2^k, k = -4..8, unless ``--lr-scale``), which gives both the fitness for selection and
   the ground truth for false merges.
2. For each setting (rounding digits, steps) a cache is simulated in child order: a child
   whose ``program_hash`` is known is a hash hit; a child with a new hash but a known
   fingerprint is an *extra hit* (a fingerprint cache would not train it: it would take the
   fitness of the first program trained with that fingerprint, its representative).
3. An extra hit is a *false merge* when a seed's final loss differs from the
   representative's by more than ``--tol`` relative (diverged = inf; two diverged runs
   agree); *not bitwise equal* when the losses differ at all; *beyond noise* when the two
   fitnesses (seed means) differ by more than their combined standard error over seeds;
   *near the start* when either loss is below twice the start program's. The control line
   gives the test's power: the share of parent/child pairs with different fingerprints
   whose losses do differ by more than the tolerance.
4. Cost: milliseconds per call of ``program_hash``, of ``fingerprint`` (defaults) and of
   the same fingerprint with the op rows run eagerly by ``execute.run`` (the obvious
   alternative), best of 3 interleaved passes over the children and over 300 random
   programs of exactly 20 live statements; and the first pass, which traces what it meets.

    python scripts/bench/fingerprint.py                      # 3000 children, ~1 min
    python scripts/bench/fingerprint.py --n 10000 --tournament 0 --settings 4:6,exact:6
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

from optevo.dsl import fingerprint as fp  # noqa: E402
from optevo.dsl.canon import canonical_form, program_hash  # noqa: E402
from optevo.dsl.execute import run as eager_run  # noqa: E402
from optevo.dsl.interpreter import encoded_form  # noqa: E402
from optevo.dsl.library import start_program  # noqa: E402
from optevo.dsl.program import INPUTS, STATE, Program, Stmt  # noqa: E402
from optevo.dsl.random import random_statement, searchable_ops  # noqa: E402
from optevo.proxy_tasks import get_task  # noqa: E402
from optevo.proxy_tasks.engine import FastEngine  # noqa: E402
from optevo.search.core.mutations import MutationFailed, default_weights, mutate  # noqa: E402

MAX_LENGTH = 32


def fitness(losses) -> float:
    return float(np.mean(losses)) if np.all(np.isfinite(losses)) else math.inf


def calibrate(engine, seeds) -> float:
    """The start program's best lr multiplier 2^k, k = -4..8 (the search calibrates it)."""
    scales = [2.0 ** k for k in range(-4, 9)]
    runs = engine.run_grid(start_program(), seeds, scales)
    return scales[int(np.argmin([fitness(r.losses) for r in runs]))]


def walk(n, population, tournament, seed, engine, seeds, lr_scale, batch=25):
    """``n`` children of regularized evolution from the start: parents by tournament of
    ``tournament`` (0: uniform, a fitness-free random walk), the oldest member leaves;
    every new hash is trained. Returns [(program, hash, parent hash)], {hash: losses}."""
    rng = np.random.default_rng(seed)
    start = start_program()
    h0 = program_hash(start)
    losses = {h0: engine.run([start], seeds, lr_scale)[0].losses}
    pop = collections.deque([(start, h0)] * population, maxlen=population)
    weights, rejected, out = default_weights(), collections.Counter(), []
    while len(out) < n:
        new = []
        for _ in range(min(batch, n - len(out))):
            if tournament:
                idx = rng.choice(len(pop), size=tournament, replace=False)
                parent, ph = min((pop[int(i)] for i in idx), key=lambda m: fitness(losses[m[1]]))
            else:
                parent, ph = pop[int(rng.integers(len(pop)))]
            try:
                res = mutate(rng, parent, ph, weights, program_hash, MAX_LENGTH, 100, rejected)
            except MutationFailed:
                continue
            new.append((res.child, res.hash, ph))
        todo = {h: p for p, h, _ in new if h not in losses}
        for h, r in zip(todo, engine.run(list(todo.values()), seeds, lr_scale)):
            losses[h] = r.losses
        pop.extend((p, h) for p, h, _ in new)
        out += new
    return out, losses


def parse_settings(text: str):
    out = []
    for item in text.split(","):
        d, s = item.split(":")
        out.append((None if d == "exact" else int(d), int(s)))
    return out


def simulate(kids, fps, start):
    """Cache simulation in child order, the start program (hash, fingerprint) cached first.
    Returns (hash hits, extra hits as (child hash, representative hash) pairs, number of
    fingerprints trained)."""
    seen, rep, hits, extra = {start[0]}, {start[1]: start[0]}, 0, []
    for (_, h, _), f in zip(kids, fps):
        if h in seen:
            hits += 1
            continue
        seen.add(h)
        if f in rep:
            extra.append((h, rep[f]))
        else:
            rep[f] = h
    return hits, extra, len(rep)


def per_call(fn, items) -> float:
    """Seconds per call of ``fn`` over ``items`` (one pass)."""
    t0 = time.perf_counter()
    for x in items:
        fn(x)
    return (time.perf_counter() - t0) / len(items)


def eager_fingerprint(program):
    """The alternative: the same fingerprint with the rows run by ``execute.run`` eagerly
    (every jnp call of a row dispatched on its own)."""
    return fp.fingerprint(program, run=eager_run)


def costs(sets, rounds=3):
    """{(function, set): best seconds per call over ``rounds`` interleaved passes}, after a
    first pass of each fingerprint (``("cold", set)``, ``("cold eager", set)``: seconds for
    the whole pass, which compiles what it meets)."""
    fns = {"hash": program_hash, "fp": fp.fingerprint, "eager": eager_fingerprint}
    out = {("cold", k): per_call(fp.fingerprint, v) * len(v) for k, v in sets.items()}
    out.update({("cold eager", k): per_call(eager_fingerprint, v) * len(v)
                for k, v in sets.items()})
    for _ in range(rounds):
        for name, fn in fns.items():
            for k, v in sets.items():
                t = per_call(fn, v)
                out[name, k] = min(out.get((name, k), t), t)
    return out


def chains(n: int, length: int, seed: int = 1):
    """Random programs of ``length`` statements that all stay live: each statement's first
    argument is the previous statement's result (``g`` for the first); the last is the
    update."""
    rng, out = np.random.default_rng(seed), []
    ops = [op for op in searchable_ops() if op.arity > 0]
    while len(out) < n:
        stmts, names, prev = [], list(INPUTS), "g"
        for _ in range(length):
            s = random_statement(rng, names, ops, p_new=1.0)
            stmts.append(Stmt(s.target, s.op, (prev,) + s.args[1:]))
            names.append(s.target)
            prev = s.target
        out.append(Program(tuple(stmts), (prev,) + STATE))
    return out


def differ(a, b, tol):
    """Whether two per-seed loss arrays differ by more than ``tol`` relative (inf = inf)."""
    a, b = np.asarray(a), np.asarray(b)
    both_inf = np.isinf(a) & np.isinf(b)
    with np.errstate(invalid="ignore"):
        rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-30)
    return bool(np.any(~both_inf & ~(rel <= tol)))


def significant(a, b) -> bool:
    """Whether two fitnesses (seed means) differ by more than their combined standard
    error over seeds (one diverged and one not: yes)."""
    fa, fb = fitness(a), fitness(b)
    if not (math.isfinite(fa) and math.isfinite(fb)):
        return math.isfinite(fa) != math.isfinite(fb)
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    return abs(fa - fb) > se


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="children to draw")
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--tournament", type=int, default=10, help="0: uniform parents")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", default="3:4,3:6,4:4,4:6,6:6,exact:6",
                    help="digits:steps,... (digits 'exact' = float32 bits)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative loss tolerance")
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument("--lr-scale", type=float, default=None,
                    help="default: the start program's calibrated multiplier")
    ap.add_argument("--controls", type=int, default=300, help="parent/child control pairs")
    ap.add_argument("--show", type=int, default=2, help="false merges to print per setting")
    args = ap.parse_args(argv)
    settings = parse_settings(args.settings)

    task = get_task("digits_mlp", hidden=8, batch_size=16)
    engine = FastEngine(task, steps=args.train_steps, buckets=(16, 32))
    seeds = np.arange(2)
    lr_scale = args.lr_scale or calibrate(engine, seeds)
    t0 = time.perf_counter()
    kids, losses = walk(args.n, args.population, args.tournament, args.seed, engine, seeds,
                        lr_scale)
    start = start_program()
    h0 = program_hash(start)
    by_hash = {h: p for p, h, _ in kids}
    by_hash.setdefault(h0, start)
    base = fitness(losses[h0])
    print(f"{len(kids)} children trained in {time.perf_counter() - t0:.0f} s; mean live "
          f"length {np.mean([len(encoded_form(p).stmts) for p, _, _ in kids]):.1f}; start "
          f"loss {base:.4f} at lr scale {lr_scale:g}", flush=True)

    # --- cost ------------------------------------------------------------------------------
    progs = [p for p, _, _ in kids]
    cost = costs({"kids": progs, "20": chains(300, 20)})

    # --- cache simulation and false merges --------------------------------------------------
    n, n_hash = len(kids), len({h for _, h, _ in kids} - {h0})  # hashes to train
    walk_kind = (f"tournament {args.tournament}" if args.tournament else "uniform parents")
    print(f"\n{n} children of a population of {args.population} ({walk_kind}), {n_hash} "
          f"new program hashes (hash cache hit rate {1 - n_hash / n:.1%}); training: "
          f"digits_mlp hidden 8, batch 16, {args.train_steps} steps, seeds 0-1, lr scale "
          f"{lr_scale:g}; false: a seed's loss differs by > {args.tol:g} relative\n")
    print("| digits | steps | distinct fingerprints | extra hits (of children) "
          "| extra hits (of new hashes) | false merges | not bitwise equal "
          "| false beyond noise | false groups | false near the start | their worst "
          "|delta| / start loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    shown = []
    for digits, steps in settings:
        fps = [fp.fingerprint(p, digits, steps) for p in progs]
        _, extra, _ = simulate(kids, fps, (h0, fp.fingerprint(start, digits, steps)))
        bad = [pair for pair in extra if differ(losses[pair[0]], losses[pair[1]], args.tol)]
        nonbit = [pair for pair in extra
                  if not np.array_equal(losses[pair[0]], losses[pair[1]])]
        groups = collections.defaultdict(set)
        for h, r in extra:
            groups[r].add(h)
        bad_groups = sum(any(differ(losses[h], losses[r], args.tol) for h in hs)
                         for r, hs in groups.items())
        signif = [pair for pair in bad if significant(losses[pair[0]], losses[pair[1]])]
        near = [(a, b) for a, b in bad  # either member within 2x of the start's loss
                if min(fitness(losses[a]), fitness(losses[b])) < 2 * base]
        worst = max([abs(fitness(losses[a]) - fitness(losses[b])) / base for a, b in near],
                    default=0.0)
        pct = lambda k: f"{k} ({k / max(len(extra), 1):.1%})"
        print(f"| {'exact' if digits is None else digits} | {steps} | {len(set(fps))} | "
              f"{len(extra)} ({len(extra) / n:.1%}) | {len(extra) / n_hash:.1%} | "
              f"{pct(len(bad))} | {pct(len(nonbit))} | {pct(len(signif))} | "
              f"{bad_groups} / {len(groups)} | {len(near)} | {worst:.3g} |")
        shown += [(digits, steps, pair) for pair in bad[:args.show]]

    default_fps = {h: fp.fingerprint(by_hash[h]) for h in by_hash}
    rng = np.random.default_rng(args.seed + 1)
    pairs = [(h, ph) for _, h, ph in kids if default_fps[h] != default_fps[ph]]
    controls = [pairs[i] for i in rng.permutation(len(pairs))[:args.controls]]
    power = np.mean([differ(losses[a], losses[b], args.tol) for a, b in controls])
    both_div = np.mean([np.all(np.isinf(losses[a])) and np.all(np.isinf(losses[b]))
                        for a, b in controls])
    print(f"\nControl: {power:.1%} of {len(controls)} parent/child pairs with different "
          f"default fingerprints differ in loss by more than the tolerance ({both_div:.1%} "
          f"both diverge).")
    print("\nCost per call on one core, ms, best of 3 interleaved passes:\n\n"
          "| | children | 20 live statements |\n|---|---|---|")
    for name, what in [("hash", "program_hash"),
                       ("fp", f"fingerprint ({fp.DIGITS} digits, {fp.STEPS} steps)"),
                       ("eager", "the same, rows run eagerly (execute.run)")]:
        print(f"| {what} | {cost[name, 'kids'] * 1e3:.3f} | {cost[name, '20'] * 1e3:.3f} |")
    print(f"\nFirst pass, s (compiles what it meets): fingerprint {cost['cold', 'kids']:.1f} "
          f"over the children, then {cost['cold', '20']:.1f} over the 20-statement programs; "
          f"eager {cost['cold eager', 'kids']:.1f}, then {cost['cold eager', '20']:.1f}.")
    print("\nCommand: python scripts/bench/fingerprint.py " + " ".join(sys.argv[1:]))
    for digits, steps, (a, b) in shown:
        print(f"\nFalse merge at digits {digits}, steps {steps}: losses {losses[a]} and "
              f"{losses[b]}\n{canonical_form(by_hash[a]).text()}"
              f"{canonical_form(by_hash[b]).text()}")


if __name__ == "__main__":
    main()
