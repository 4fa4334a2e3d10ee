"""Proxy fidelity against the ladder's upper stages: which proxy task (or bounded suite of
them) ranks optimizer programs the way the default funnel's stages B (``lm64``) and C
(``lm256``) do?

Both inputs are ladder directories (``optevo ladder``; every optimizer is kept on every stage,
its learning rate and weight decay tuned by the funnel's one rule, then trained on fresh
seeds), run with the same ``--mutants`` and ``--seed`` so that they hold the same programs:

- ``--targets``: the default funnel (``configs/funnel.yaml``): stages ``proxy`` (digits_mlp,
  the search proxy of ``configs/quick.yaml``), ``lm64`` and ``lm256``;
- ``--proxies``: the candidate proxies as stages (``scripts/experiments/proxy_stages.yaml``).

A program's score on a task is its tuned mean loss on that task's fresh seeds (inf if it
diverged there, so it ranks last). A suite's score bounds each task's influence, as a search
over a suite would have to (the geometric mean of loss ratios let one task's 1e13 ratios
decide): either the mean over tasks of the program's rank on each task (``ranks``), or the
mean of ``log(loss / AdamW's loss)`` clipped to [-CLIP, CLIP] (``clipped``). For every task
and suite of up to three tasks: Spearman's rho with B and with C over all programs and over
the competitive subset, bootstrap 95% intervals over programs, and the cost (median
seconds per seed-run on one worker, summed over a suite).

The rule, fixed before the data: among tasks and suites whose seconds per seed-run sum to at
most ``--max-ms``, the recommended proxy has the highest mean of its competitive-subset rho
to B and to C; a tie goes to the cheaper. Each target counts the programs settled on it and
on every proxy (``--drop`` leaves out an unfinished proxy stage); its competitive subset is
those within ``--competitive`` x tuned AdamW's loss on that target.

    optevo ladder --mutants 36 --out scripts/experiments/results/ladder36
    optevo ladder scripts/experiments/proxy_stages.yaml --mutants 36 \\
        --out scripts/experiments/results/proxy36
    python scripts/experiments/proxy_fidelity_ladder.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np

from optevo.proxy_tasks.fitness import bootstrap_spearman, rankdata, spearman
from optevo.search.funnel import report as rep
from optevo.search.funnel.ladder import stage_tables
from optevo.search.funnel.runner import Results, saved_funnel

CLIP = math.log(2.0)  # a task moves a suite's clipped score by at most a factor of 2
RESULTS = Path("scripts/experiments/results")


def ladder_losses(out: Path):
    """``{stage: {program: tuned mean loss on fresh seeds}}`` (inf: diverged) for every
    program settled on a stage, the reference's name, and seconds per seed-run by stage."""
    cfg, cands = saved_funnel(out)
    res = Results(out / "results.jsonl")
    res.close()
    tables = stage_tables(cfg, cands, res.by_key)
    losses = {s.name: {n: (row["mean"] if "mean" in row and not row.get("diverged")
                           else math.inf) for n, row in t.items()}
              for s, t in zip(cfg.stages, tables)}
    cost = rep.measured_seconds(out / "results.jsonl", cands)
    return losses, cfg.reference, cost


def suite_scores(losses: np.ndarray, ref: np.ndarray, how: str) -> np.ndarray:
    """``losses[t][p]``: one score per program from several tasks, each task's influence
    bounded: the mean rank (``ranks``) or the mean clipped log-ratio to the reference."""
    if how == "ranks":
        return np.mean([rankdata(row) for row in losses], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(losses / ref[:, None])
    return np.clip(np.where(np.isnan(r), CLIP, r), -CLIP, CLIP).mean(axis=0)


def fidelity_rows(table, names, ref_name, proxies, targets, cost, competitive, n_boot):
    """One row per task or suite: its Spearman to each target over the programs settled
    there (``names[t]``), and over those within ``competitive`` x the reference's loss on it."""
    rows, counts = [], {}
    combos = [(c, how) for r in (1, 2, 3) for c in itertools.combinations(proxies, r)
              for how in (("single",) if r == 1 else ("ranks", "clipped"))]
    for combo, how in combos:
        row = {"proxy": " + ".join(combo) + ("" if how == "single" else f" ({how})"),
               "ms": round(1000 * sum(cost.get(t) or math.nan for t in combo), 2)}
        for t in targets:
            y = np.array([table[t][n] for n in names[t]])
            sub = y <= competitive * table[t][ref_name]
            counts[t] = (len(y), int(sub.sum()))
            x = np.array([[table[p][n] for n in names[t]] for p in combo])
            ref = np.array([table[p][ref_name] for p in combo])
            score = x[0] if how == "single" else suite_scores(x, ref, how)
            for key, m in ((t, slice(None)), (f"{t}_competitive", sub)):
                row[key] = round(spearman(score[m], y[m]), 3)
                row[key + "_ci"] = [round(v, 3) for v in
                                    bootstrap_spearman(score[m], y[m], n_boot, 0)]
        rows.append(row)
    return rows, counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=Path, default=RESULTS / "ladder36")
    ap.add_argument("--proxies", type=Path, default=RESULTS / "proxy36")
    ap.add_argument("--upper", nargs=2, default=["lm64", "lm256"], help="stages B and C")
    ap.add_argument("--drop", nargs="*", default=[], help="stages left out (unfinished)")
    ap.add_argument("--competitive", type=float, default=1.1)
    ap.add_argument("--max-ms", type=float, default=100.0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=RESULTS / "proxy_fidelity_ladder.json")
    args = ap.parse_args(argv)
    tl, ref, tcost = ladder_losses(args.targets)
    pl, pref, pcost = ladder_losses(args.proxies)
    assert ref == pref, (ref, pref)
    table, cost = {**pl, **tl}, {**pcost, **tcost}
    proxies = [s for s in list(pl) + list(tl) if s not in args.upper + args.drop]
    common = set.intersection(*(set(table[s]) for s in proxies))
    common = {n for n in common if n != ref and not n.startswith(("hyper", "l2l"))}
    names = {t: sorted(common & set(table[t])) for t in args.upper}
    rows, counts = fidelity_rows(table, names, ref, proxies, args.upper, cost,
                                 args.competitive, args.bootstrap)
    B, C = args.upper
    ok = [r for r in rows if r["ms"] <= args.max_ms]
    best = max(ok, key=lambda r: ((r[f"{B}_competitive"] + r[f"{C}_competitive"]) / 2,
                                  -r["ms"]), default=None)
    both = sorted(set(names[B]) & set(names[C]))
    upper_rho = spearman(np.array([table[B][n] for n in both]),
                         np.array([table[C][n] for n in both]))
    result = {"programs": names, "counts": counts, "rows": rows,
              "recommended": best and best["proxy"], "B_to_C": upper_rho, "B_and_C": len(both),
              "cost_s": cost, "dropped": args.drop,
              "losses": {t: {n: table[t].get(n) for n in sorted(common) + [ref]}
                         for t in proxies + args.upper}}
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    md = markdown(result, B, C)
    args.out.with_suffix(".md").write_text(md + "\n")
    print(md)


def markdown(res, B, C) -> str:
    cell = (lambda r, k: f"{r[k]:.2f} [{r[k + '_ci'][0]:.2f}, {r[k + '_ci'][1]:.2f}]")
    n = "; ".join(f"{t}: {a} programs, {c} competitive" for t, (a, c) in res["counts"].items())
    lines = [f"{n}. Spearman of {B} to {C}: {res['B_to_C']:.2f} over {res['B_and_C']} programs. "
             f"Recommended: **{res['recommended']}**.", "",
             f"| proxy or suite | to {B} | to {C} | to {B}, competitive | to {C}, competitive"
             " | ms per seed-run |", "|---" * 6 + "|"]
    for r in sorted(res["rows"], key=lambda r: -(r[f"{B}_competitive"]
                                                 + r[f"{C}_competitive"])):
        lines.append(f"| {r['proxy']} | {cell(r, B)} | {cell(r, C)} | "
                     f"{cell(r, B + '_competitive')} | {cell(r, C + '_competitive')} | "
                     f"{r['ms']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
