"""Proxy fidelity: does a proxy task (or a suite of them) rank optimizer programs the way the
funnel's larger stages do?

Programs (about ``--programs``): the library (``configs/programs``), mutants of the AdamW start
at 1, 2, 4 and 8 mutations (``mutations.mutate`` applied that many times, seeded, distinct by
``program_hash``) and the best distinct programs of search runs (``--runs DIR...``). A
program that diverges at its best lr on the first proxy, or there has the same losses at
every multiplier as one kept before (an equivalent program), is dropped (a mutant: the next
of its distance is drawn). optax AdamW (lr and weight decay tuned) is a reference row only.

Each program's lr multiplier is tuned separately on every proxy task and on funnel stages B
(``digits_cnn``) and C (``lm_transformer``), both at ``configs/funnel.yaml``'s settings
unless overridden: ``tuning.tune_program``, the one tuning rule's log line of ratio 2
centred on the tuned start's multiplier on that task (the start: 2^-4..2^4 around 1), grown
at an edge. On B and C the chosen multiplier is trained on fresh seeds and their mean is the
target; on a proxy the line's best is its loss (as a search sees its own seeds). A suite
scores a program by the geometric mean over its tasks of loss / the tuned start's loss
(``search/core/scoring.py``; inf if any task diverged). For every task and combination of
tasks: Spearman's rho (ties averaged) with B and with C, over all programs and over the
competitive subset (within ``--subset-ratio`` of the start on B), each with a bootstrap 95%
interval over programs, and the cost: median seconds per seed-run on one worker core (summed
over a suite). Also single tasks at the start's multiplier (untuned, as a search scores) and
the split-half rho of B and C themselves (their noise ceiling). Recommended: among suites
whose every task costs at most ``--max-ms`` and whose rho to B is >= 0.7, the best to B on
the competitive subset. Results are written to ``--out`` after every tuning; ``--resume``
skips finished ones.

    optevo search configs/quick.yaml --workers 1 --time-limit 90 --seed 1 \
        --run-dir /tmp/pf/search_s1                          # and --seed 2 into search_s2
    python scripts/experiments/proxy_fidelity.py --programs 50 --workers 2 --per-run 3 \
        --runs /tmp/pf/search_s1 /tmp/pf/search_s2 --out scripts/experiments/results/proxy_fidelity.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from optevo.proxy_tasks.fitness import aggregate, bootstrap_spearman, rankdata, spearman  # noqa: F401
from optevo.proxy_tasks.seeds import fresh_seeds

PROXIES = ["digits_mlp", "quadratic", "rosenbrock", "text_lm",
           "text_lm:steps=150,batch_size=32"]  # the last: text_lm cut to fit ~20 ms
START = "lib:adam_style"
ADAMW = "optax_adamw"


def suite_score(losses, baselines) -> np.ndarray:
    """Suite fitness of each program: ``losses[t][p]`` (task t, program p), ``baselines[t]``
    the tuned start's loss on task t; the geometric mean over tasks of ``loss / baseline``,
    inf where any task's loss is not finite (as ``scoring.Scorer`` does)."""
    L = np.asarray(losses, np.float64)
    b = np.asarray(baselines, np.float64)[:, None]
    bad = ~np.isfinite(L).all(axis=0) | (L <= 0).any(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(np.log(np.where(np.isfinite(L) & (L > 0), L, 1.0) / b).mean(axis=0))
    return np.where(bad, np.inf, out)


def library_programs():
    from optevo.dsl.library import library
    return [{"name": f"lib:{n}", "source": "library", "distance": None, "text": p.text()}
            for n, p in library().items()]


def run_programs(dirs, k):
    from optevo.search.core.rundir import RunDir, best_distinct
    return [{"name": f"run:{Path(d).name}#{r.id}", "source": f"run {d}", "distance": None,
             "text": r.program}
            for d in dirs for r in best_distinct(RunDir(d).records(), k, include_start=False)]


def draw_mutant(d: int, i: int, seed: int):
    """Candidate ``i`` at distance ``d``: ``d`` successive mutations of the start."""
    from optevo.dsl.canon import program_hash
    from optevo.dsl.library import start_program
    from optevo.search.core.mutations import MutationFailed, default_weights, mutate
    rng = np.random.default_rng([seed, d, i])
    p, h = start_program(), program_hash(start_program())
    for _ in range(d):
        try:
            res = mutate(rng, p, h, default_weights(), program_hash, 32, 100)
        except MutationFailed:
            return None, None
        p, h = res.child, res.hash
    return {"name": f"mut{d}-{i}", "source": "mutant", "distance": d, "text": p.text()}, h


def parse_task(text):
    """``name`` or ``name:key=value,key=value`` (numbers as int or float)."""
    name, _, rest = text.partition(":")
    opts = {}
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=")
        opts[k] = int(v) if v.lstrip("-").isdigit() else float(v)
    return name, opts


def stage_tasks(args):
    from optevo.search.funnel.config import load_funnel_config
    stages = {s.task: s for s in load_funnel_config(args.funnel).stages}
    out = []
    for tag, task, steps in (("B", "digits_cnn", args.b_steps),
                             ("C", "lm_transformer", args.c_steps)):
        opts = {**stages[task].task_options(), **({"steps": steps} if steps else {})}
        out.append({"label": f"{tag}:{task}", "task": task, "options": opts, "target": True})
    return out


class Store:
    """The results file: settings, programs, and one entry per (task, program) tuning."""

    def __init__(self, path, resume: bool, settings):
        self.path = Path(path)
        if self.path.exists() and not resume:
            sys.exit(f"{self.path} exists: pass --resume to continue it, or another --out")
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
        if self.data and self.data["settings"] != settings:
            sys.exit(f"{self.path}: saved with other settings: {self.data['settings']}")
        self.data.setdefault("settings", settings)
        self.data.setdefault("tunings", {})
        self.t0, self.before = time.time(), self.data.get("wall_s", 0.0)

    def get(self, task, name):
        return self.data["tunings"].get(task, {}).get(name)

    def put(self, task, name, entry):
        self.data["tunings"].setdefault(task, {})[name] = entry
        self.save()

    def save(self):
        from optevo.search.core.rundir import atomic_write
        self.data["wall_s"] = round(self.before + time.time() - self.t0, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
        atomic_write(self.path, text + "\n")


def fin(x):
    return round(x, 6) if x is not None and math.isfinite(x) else None


def tune_entry(pool, name, text, seeds, eval_seeds, centre, line_args):
    from optevo.proxy_tasks.tuning import LineRule
    from optevo.search.core import tuning
    from optevo.search.core.jobs import Job, JobId
    t0 = time.time()
    if text is None:  # optax AdamW: lr, then weight decay
        text, best, lrs, wd = tuning.tune_baseline(pool, seeds=seeds,
                                                lr_rule=LineRule(max_extend=8))
        line, loss = lrs[0], wd.loss
    else:
        line = tuning.tune_program(pool, name, text, seeds=seeds, base=centre,
                                   rule=LineRule(**line_args))
        best, loss = line.best, line.loss
    secs = [r.seconds / len(r.seeds) for r in line.results.values()]
    entry = {"best": best, "loss": fin(loss), "at_edge": line.at_edge,
             "at_centre": fin(line.points.get(centre)),
             "points": [[k, fin(v)] for k, v in sorted(line.points.items())],
             "sec_per_seed_run": round(float(np.median(secs)), 5), "jobs": len(secs)}
    if eval_seeds and math.isfinite(loss):  # in groups of the tuning seeds' size
        n = len(seeds)
        groups = [eval_seeds[i:i + n] for i in range(0, len(eval_seeds), n)]
        ids = [JobId("fresh", name, seeds=f"e{i}") for i in range(len(groups))]
        res = tuning.run_jobs(pool, [Job(i, text, g, best) for i, g in zip(ids, groups)])
        losses = [x for i in ids for x in res[i].losses]
        diverged = [x for i in ids for x in res[i].diverged]
        entry["eval_loss"] = fin(aggregate(losses, diverged).mean)
        entry["eval_losses"] = [fin(x) for x in losses]
    entry["wall_s"] = round(time.time() - t0, 2)
    return entry


def run_task(args, store, spec, programs, candidates=None):
    """Tune the start, optax AdamW and every program on one task (skipping finished ones).
    First proxy (``candidates``: per distance, mutants to draw until the quota is met):
    returns the programs kept, those finite at their best lr and not a duplicate (the same
    losses at every multiplier) of one kept before."""
    from optevo.proxy_tasks.engine import buckets_for
    from optevo.search.core.workers import EvalSpec, make_pool
    label, target = spec["label"], spec.get("target", False)
    i = "BC".index(label[0]) if target else None
    seeds = list(range(args.stage_seeds[i] if target else args.seeds))
    eval_seeds = fresh_seeds(args.eval_seeds[i]) if target else None
    pool = [None]

    def get(name, text, centre, line_args):
        entry = store.get(label, name)
        if entry is None:
            if pool[0] is None:
                pool[0] = make_pool(EvalSpec(spec["task"], spec["options"], None, tuple(seeds),
                                             buckets_for(32)), args.workers)
            entry = tune_entry(pool[0], name, text, seeds, eval_seeds, centre, line_args)
            store.put(label, name, entry)
            print(f"[{time.strftime('%H:%M:%S')}] {label} {name}: lr x{entry['best']:.4g} "
                  f"loss {entry['loss']} eval {entry.get('eval_loss')} "
                  f"({entry['wall_s']} s)", flush=True)
        return entry

    line = {"lo": args.lr_lo, "hi": args.lr_hi, "max_extend": args.max_extend}
    try:
        centre = get(START, next(p["text"] for p in programs if p["name"] == START), 1.0,
                     {"lo": -4, "hi": 4, "max_extend": 8})["best"]
        get(ADAMW, None, 1.0, None)
        if candidates is None:
            for p in programs:
                get(p["name"], p["text"], centre, line)
            return programs
        seen = set()

        def keep(p):
            e = get(p["name"], p["text"], centre, line)
            sig = json.dumps(e["points"])
            ok = e["loss"] is not None and sig not in seen
            seen.add(sig)
            return ok
        kept = [p for p in programs if keep(p)]
        for d, quota, draws in candidates:
            kept += itertools.islice(filter(keep, draws), quota)
        return kept
    finally:
        if pool[0] is not None:
            pool[0].shutdown()


def mutant_candidates(args, taken_hashes, n_mutants):
    per = [n_mutants // len(args.distances) + (i < n_mutants % len(args.distances))
           for i in range(len(args.distances))]
    out = []
    for d, quota in zip(args.distances, per):
        def draws(d=d):
            for i in range(args.max_draws):
                prog, h = draw_mutant(d, i, args.seed)
                if prog is not None and h not in taken_hashes:
                    taken_hashes.add(h)
                    yield prog
        out.append((d, quota, draws()))
    return out


def analyse(args, store, programs, tasks):
    tun = store.data["tunings"]
    names = [p["name"] for p in programs]
    proxies = [t["label"] for t in tasks if not t.get("target")]
    targets = [t["label"] for t in tasks if t.get("target")]

    def vec(label, key="loss"):
        return np.array([math.inf if tun[label][n].get(key) is None else tun[label][n][key]
                         for n in names])
    ytrue = {t: vec(t, "eval_loss") for t in targets}
    base = {t: tun[t][START]["loss"] for t in proxies}
    cost = {t: float(np.median([tun[t][n]["sec_per_seed_run"] for n in names]))
            for t in proxies + targets}
    B, C = targets
    sub = ytrue[B] <= args.subset_ratio * tun[B][START]["eval_loss"]
    rows = []
    combos = [c for r in range(1, len(proxies) + 1) for c in itertools.combinations(proxies, r)]
    for combo in combos:
        score = suite_score([vec(t) for t in combo], [base[t] for t in combo])
        rows.append(_row(" + ".join(combo), score, ytrue, sub, sum(cost[t] for t in combo),
                         max(cost[t] for t in combo), args))
    for t in proxies:
        rows.append(_row(f"{t} (untuned: start's lr)", vec(t, "at_centre"), ytrue, sub,
                         cost[t], cost[t], args))
    # the choice: within the cost goal and Spearman to B >= 0.7 (over all programs, where
    # the programs that do not learn at all make ranking easy), the best to B among the
    # competitive subset, then the cheapest; if none reaches 0.7 to B, the best to B
    ok = [r for r in rows if "(" not in r["proxy"] and r["max_task_ms"] <= args.max_ms]
    good = [r for r in ok if r["to_B"] >= 0.7]
    best = max(good, key=lambda r: (r["to_B_subset"], -r["ms"])) if good else \
        max(ok, key=lambda r: (r["to_B"], -r["ms"]), default=None)

    def half(t, k):  # mean of the first (k=0) or second half of the eval seeds
        xs = [[math.inf if x is None else x for x in tun[t][n].get("eval_losses") or [None] * 2]
              for n in names]
        return np.array([np.mean(x[k * len(x) // 2:][:len(x) // 2]) for x in xs])
    ceiling = {f"{t}{s}": round(spearman(half(t, 0)[m], half(t, 1)[m]), 3)
               for t in targets for s, m in (("", slice(None)), (" subset", sub))}
    return {"n_programs": len(names), "n_subset": int(sub.sum()), "cost_s": cost,
            "rows": rows, "recommended": best and best["proxy"],
            "meets_goal": bool(best and best["to_B"] >= 0.7),
            "split_half": ceiling, "B_to_C": round(spearman(ytrue[B], ytrue[C]), 3),
            "B_to_C_subset": round(spearman(ytrue[B][sub], ytrue[C][sub]), 3),
            "by_program": {n: {t: tun[t][n].get("eval_loss", tun[t][n]["loss"])
                               for t in proxies + targets} for n in names + [ADAMW]}}


def _row(label, score, ytrue, sub, cost, max_cost, args):
    B, C = list(ytrue)
    r = {"proxy": label, "ms": round(1000 * cost, 2), "max_task_ms": round(1000 * max_cost, 2)}
    for key, y, mask in (("to_B", ytrue[B], None), ("to_C", ytrue[C], None),
                         ("to_B_subset", ytrue[B], sub), ("to_C_subset", ytrue[C], sub)):
        s, t = (score, y) if mask is None else (score[mask], y[mask])
        r[key] = round(spearman(s, t), 3)
        r[key + "_ci"] = [round(v, 3) for v in bootstrap_spearman(s, t, args.bootstrap)]
    return r


def markdown(an) -> str:
    lines = ["| proxy or suite | Spearman to B [95% CI] | to C [95% CI] | to B, subset "
             f"(n={an['n_subset']}) | to C, subset | ms per seed-run (max task) |",
             "|---" * 6 + "|"]
    for r in an["rows"]:
        cell = (lambda k: f"{r[k]:.2f} [{r[k + '_ci'][0]:.2f}, {r[k + '_ci'][1]:.2f}]")
        lines.append(f"| {r['proxy']} | {cell('to_B')} | {cell('to_C')} | "
                     f"{cell('to_B_subset')} | {cell('to_C_subset')} | {r['ms']:.1f} "
                     f"({r['max_task_ms']:.1f}) |")
    sh = ", ".join(f"{t} {v:.2f}" for t, v in an["split_half"].items())
    ms = ", ".join(f"{t} {1000 * v:.1f}" for t, v in an["cost_s"].items())
    return "\n".join(lines) + (f"\n\nSpearman of B to C: {an['B_to_C']:.2f} (subset "
                               f"{an['B_to_C_subset']:.2f}). Split-half "
                               f"(one half of the eval seeds against the other): {sh}. "
                               f"ms per seed-run: {ms}.")


def program_table(an) -> str:
    """Each program's loss on every task as a ratio to the tuned start's (B, C: fresh seeds)."""
    by = an["by_program"]
    tasks = list(by[START])
    lines = ["| program | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    ratio = (lambda n, t: "diverged" if by[n][t] is None else f"{by[n][t] / by[START][t]:.3f}")
    order = sorted(by, key=lambda n: (by[n][tasks[-2]] is None, by[n][tasks[-2]] or 0))
    lines += [f"| {n} | " + " | ".join(ratio(n, t) for t in tasks) + " |" for n in order]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=50, help="programs in all (approx.)")
    ap.add_argument("--seeds", type=int, default=4, help="tuning seeds on a proxy task")
    ap.add_argument("--stage-seeds", type=int, nargs=2, default=[4, 2], help="on B and C")
    ap.add_argument("--eval-seeds", type=int, nargs=2, default=[16, 8],
                    help="fresh seeds the tuned lr is trained on, on B and on C")
    ap.add_argument("--workers", type=int, default=2, help="Ray workers; 0: in-process")
    ap.add_argument("--out", default="scripts/experiments/results/proxy_fidelity.json")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--runs", nargs="*", default=[], help="search run directories")
    ap.add_argument("--per-run", type=int, default=4, help="best distinct programs per run")
    ap.add_argument("--proxies", nargs="+", default=PROXIES, help="name[:key=val,...]")
    ap.add_argument("--funnel", default="configs/funnel.yaml")
    ap.add_argument("--b-steps", type=int, default=None, help="override stage B's steps")
    ap.add_argument("--c-steps", type=int, default=None, help="override stage C's steps")
    ap.add_argument("--distances", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--seed", type=int, default=0, help="seed of the mutant draws")
    ap.add_argument("--max-draws", type=int, default=200, help="mutants drawn per distance")
    ap.add_argument("--lr-lo", type=int, default=-3, help="grid 2^lo..2^hi around the centre")
    ap.add_argument("--lr-hi", type=int, default=3)
    ap.add_argument("--max-extend", type=int, default=10)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--subset-ratio", type=float, default=1.5)
    ap.add_argument("--max-ms", type=float, default=20.0, help="cost goal per task")
    args = ap.parse_args(argv)
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    from optevo.dsl.canon import program_hash
    from optevo.dsl.parse import parse

    tasks = [{"label": t, "task": parse_task(t)[0], "options": parse_task(t)[1]}
             for t in args.proxies] + stage_tasks(args)
    settings = {k: getattr(args, k) for k in ("programs", "seeds", "stage_seeds",
                                              "eval_seeds", "runs", "per_run", "distances",
                                              "seed", "lr_lo", "lr_hi", "max_extend")}
    settings["tasks"] = tasks
    store = Store(args.out, args.resume, settings)
    programs = library_programs() + run_programs(args.runs, args.per_run)
    hashes = {}
    for p in programs:
        hashes.setdefault(program_hash(parse(p["text"])), p)
    programs = list(hashes.values())
    hashes = set(hashes)
    cands = mutant_candidates(args, hashes, max(0, args.programs - len(programs)))
    programs = run_task(args, store, tasks[0], programs, cands)
    store.data["programs"] = programs
    store.save()
    for spec in tasks[1:]:
        run_task(args, store, spec, programs)
    an = analyse(args, store, programs, tasks)
    store.data["analysis"] = an
    store.save()
    Path(args.out).with_suffix(".md").write_text(
        f"# Proxy fidelity ({an['n_programs']} programs)\n\n{markdown(an)}\n\n"
        f"Loss / tuned start's, sorted by stage B:\n\n{program_table(an)}\n")
    print(markdown(an))
    print(f"recommended: {an['recommended']} (goal met: {an['meets_goal']}); "
          f"{an['n_programs']} programs; wall {store.data['wall_s']} s")


if __name__ == "__main__":
    main()
