"""The discover report: survivors (exported to optax), ``report.md`` and the two PNGs.

Survivors are the funnel candidates that passed every stage (a candidate that passes the
last stage passed all before it: only passers go on). If none did, the best candidate (by
mean loss) at the deepest stage any candidate reached is exported instead and marked as not
a survivor. Each is simplified bit-exactly (``simplify_exact(strict=True)``) and written as
``survivors/NAME.py`` defining ``discovered(...)`` whose defaults are the tuning of the
last stage it ran (:func:`survivor_tuning`: learning rate in optax's units and that stage's
schedule, decay, named constants). Everything here is a pure
function of the files of OUT (search summaries, the funnel's ``summary.json`` and stage
tables), so a resumed pipeline rewrites the same report.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Dict, List, Optional

from optevo.dsl.codegen import to_module_source
from optevo.dsl.parse import parse
from optevo.simplify import simplify_exact

from ..core.rundir import SUMMARY, RunDir, RunDirError, atomic_write
from ..funnel.report import stage_file
from ..funnel.runner import saved_funnel
from . import plots
from .layout import BEST_START, FUNNEL_DIR, REPORT, SURVIVORS

FUNCTION = "discovered"


def module_name(candidate: str) -> str:
    """A file name (and module name) for a candidate such as ``search-2#417``."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", candidate).strip("_") or "program"
    return name if name[0].isalpha() else f"p_{name}"


def funnel_summary(fdir: Path) -> Dict:
    """The funnel's ``summary.json`` with the keys the report reads; a damaged or cut file is
    one line naming it (``--resume`` rewrites it from the funnel's jobs)."""
    p = fdir / SUMMARY
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(d, dict) or not isinstance(d.get("stages"), list):
            raise ValueError("no list of stages")
        for k in ("reference", "elapsed"):
            if k not in d:
                raise ValueError(f"no {k!r}")
    except OSError as e:
        raise RunDirError(f"{p}: unreadable ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise RunDirError(f"{p}: damaged ({e}); delete it and run optevo funnel --resume "
                          f"{fdir} to write it again") from None
    return d


def survivors(out: Path) -> Dict:
    """{"survived": bool, "programs": [...], "failed": [...]} from the funnel's files: each
    program with its simplified text and its row on every stage it ran; ``failed`` says, for
    each other candidate, the stage it did not pass."""
    fdir = out / FUNNEL_DIR
    _, cands = saved_funnel(fdir)
    p = fdir / SUMMARY
    if not p.exists():
        raise RunDirError(f"{fdir}: the funnel has not finished (no {SUMMARY})")
    summary = funnel_summary(fdir)
    stages = summary["stages"]
    trails: Dict[str, List] = {c.name: [] for c in cands if not c.baseline}
    for st in stages:
        for r in st["rows"]:
            if r["candidate"] in trails:
                trails[r["candidate"]].append((st["name"], r))
    passed = [n for n, t in trails.items()
              if len(t) == len(stages) and all(r["passes"] for _, r in t)]
    survived = bool(passed)
    if not survived:
        deepest = max((len(t) for t in trails.values()), default=0)
        at = [n for n, t in trails.items() if len(t) == deepest and deepest]
        passed = sorted(at, key=lambda n: (trails[n][-1][1].get("mean", math.inf), n))[:1]
    text = {c.name: c.text for c in cands}
    source = {c.name: c.source for c in cands}
    programs = []
    for n in passed:
        prog = simplify_exact(parse(text[n]), strict=True)
        programs.append({"name": n, "source": source[n], "program": prog.text(),
                         "file": f"{SURVIVORS}/{module_name(n)}.py",
                         "stages": [dict(r, stage=s) for s, r in trails[n]]})
    failed = [{"name": n, "stage": t[-1][0], "row": t[-1][1]} for n, t in trails.items()
              if n not in passed or not survived]
    failed = [f for f in failed if not f["row"]["passes"]]
    return {"survived": survived, "programs": programs, "failed": failed,
            "stages": stages, "reference": summary["reference"]}


def survivor_tuning(out: Path, s: Dict):
    """(program, ``codegen.Tuning``) of survivor ``s``: its text at the decay factor of the
    last stage it ran, simplified bit-exactly, with that stage's lr multiplier and task
    schedule as the module's defaults; the other stages' choices are named in the note."""
    from optevo.dsl.codegen import Tuning
    from optevo.dsl.decay import at_factor
    from optevo.proxy_tasks.tasks.schedules import for_export
    cfg, cands = saved_funnel(out / FUNNEL_DIR)
    last = s["stages"][-1]
    stage = next(st for st in cfg.stages if st.name == last["stage"])
    task = stage.make_task()
    text = next(c.text for c in cands if c.name == s["name"])
    program = simplify_exact(at_factor(parse(text), last["wd_factor"])[0], strict=True)
    each = "; ".join(f"{r['stage']} lr x{r['lr_mult']:g}, decay "
                     + ("off" if r["wd_factor"] == 0 else f"x{r['wd_factor']:g}")
                     for r in s["stages"])
    note = (f"Defaults: tuned by the funnel's last stage, {stage.name} ({task.name}, "
            f"{stage.steps or task.steps} steps); each stage's tuning: {each}.")
    return program, Tuning(float(last["lr_mult"]),
                           for_export(task, stage.steps or task.steps), note)


def export(out: Path, programs: List[Dict]):
    (out / SURVIVORS).mkdir(exist_ok=True)
    for s in programs:
        program, tuning = survivor_tuning(out, s)
        src = to_module_source(program, name=FUNCTION,
                               source=f"optevo discover ({s['name']})", tuning=tuning)
        atomic_write(out / s["file"], src)


def _pm(x, se, spec="+.4f") -> str:
    return "—" if x is None else f"{x:{spec}} ± {(se or 0.0):.4f}"


def _searches(out: Path, names: List[str], state: Dict) -> List[str]:
    opts, best = state["options"], state.get("best_start") or {}
    n = len(names) - 1
    lines = ["## Searches", "",
             f"{n} independent searches (seeds {state['config']['seed']}.."
             f"{state['config']['seed'] + n - 1}), then one more started from the best program "
             "they found: the paper's \"one more from the best\" (Chen et al. ran 5 searches, "
             "then one from the best). Each search's budget: "
             + (f"{opts['time_limit']:g} s of search" if opts["time_limit"] else "no time limit")
             + (f", at most {opts['max_evals']} trained children" if opts["max_evals"]
                else "") + (f" (a share of --minutes {opts['minutes']:g})"
                            if opts["minutes"] else "") + ".", ""]
    if best:
        lines += [f"`{BEST_START}` is program {best['id']} of {best['search']}, the best by "
                  "held-out loss relative to the tuned start"
                  + (f" ({best['holdout_ratio']:.4f})" if best.get("holdout_ratio") else "")
                  + f"; {names[-1]} starts from it, so its fitness and \"vs tuned start\" are "
                  "relative to that program (progress.png and the line below the table put "
                  "every search on one axis).", ""]
    lines += ["Each search re-checks its best programs on fresh seeds never used for "
              "selection, each re-tuned; the tuned start and optax AdamW (learning rate and "
              "weight decay tuned) on the same seeds. Differences are paired, mean ± SE "
              "(negative is better).", "",
              "| search | seed | trained | seconds | best on selection seeds (id: "
              "normalized) | best on fresh seeds (id) | held-out loss | vs tuned start | "
              "vs tuned AdamW |", "|---|---|---|---|---|---|---|---|---|"]
    for i, name in enumerate(names):
        s = RunDir(out / name).summary() or {}
        fit, sel = s.get("selection_best_normalized"), s.get("selection_best_id", "—")
        vs_start = _pm(s.get("holdout_best_diff_vs_tuned_start"),
                       s.get("holdout_best_diff_vs_tuned_start_stderr"))
        vs_adamw = _pm(s.get("holdout_best_diff_vs_tuned_adamw"),
                       s.get("holdout_best_diff_vs_tuned_adamw_stderr"))
        lines.append(
            f"| {name} | {state['config']['seed'] + i} | {s.get('trained', '—')} | "
            f"{s.get('elapsed_seconds', '—')} | "
            f"{sel}: {'—' if fit is None else f'{fit:.4f}'} | "
            f"{s.get('holdout_best_id', '—')} | "
            f"{_pm(s.get('holdout_best_loss'), s.get('holdout_best_stderr'), '.4f')} | "
            f"{vs_start} | {vs_adamw} |")
    pts = plots.holdout_points(out, names, state)
    adamw = [p["adamw"] for p in pts.values() if "adamw" in p]
    lines += ["", "Held-out loss of each search's best relative to the tuned start of "
              f"search-1..{n}: " + ", ".join(f"{k} {p['ratio']:.4f} ± {p['se']:.4f}"
                                             for k, p in pts.items())
              + (f"; tuned optax AdamW {sum(adamw) / len(adamw):.4f}." if adamw else "."),
              "", "![search progress](progress.png)", ""]
    return lines


def _funnel(out: Path, sv: Dict) -> List[str]:
    fdir = out / FUNNEL_DIR
    fcfg, cands = saved_funnel(fdir)
    lines = ["## Funnel", "",
             f"The top {sum(not c.baseline for c in cands)} distinct programs of all searches "
             "(simplified bit-exactly, one per hash, ranked by fitness relative to the tuned "
             f"start): {', '.join(c.name for c in cands if not c.baseline)}; baselines "
             f"{', '.join(c.name for c in cands if c.baseline)}, reference `{fcfg.reference}`. "
             f"Full funnel report: `{FUNNEL_DIR}/report.md`.", ""]
    for si, stage in enumerate(fcfg.stages):
        p = fdir / stage_file(si, stage)
        if p.exists():
            lines += ["#" + p.read_text().rstrip(), ""]
    lines += ["![funnel](funnel.png)", ""]
    return lines


def _row_text(r: Dict) -> str:
    if r.get("diverged"):
        return "diverged"
    ratio = f"{r['ratio']:.3f}" if "ratio" in r else "—"
    return f"{ratio} | {_pm(r.get('diff'), r.get('diff_se'))}"


def _survivors(sv: Dict) -> List[str]:
    ref = sv["reference"]
    lines = ["## Survivors", ""]
    if sv["survived"]:
        lines += [f"{len(sv['programs'])} program(s) passed every stage of the funnel.", ""]
    else:
        lines += ["No candidate passed every stage. Where each failed:", ""]
        lines += [f"- {f['name']}: {f['stage']} (loss / {ref} {_row_text(f['row'])})"
                  .replace(" | ", ", diff ") for f in sv["failed"]]
        if sv["programs"]:
            lines += ["", f"Exported instead, NOT a survivor: {sv['programs'][0]['name']}, the "
                      "best candidate (by mean loss) at the last stage any candidate reached."]
        lines.append("")
    for s in sv["programs"]:
        lines += [f"### {s['name']}" + ("" if sv["survived"] else " (not a survivor)"), "",
                  f"From {s['source']}; simplified (exact, bit-for-bit); exported to "
                  f"`{s['file']}` (`{FUNCTION}(learning_rate=1.0)`, an optax "
                  "GradientTransformation).", "", "```python", s["program"].rstrip(), "```", "",
                  f"| stage | loss / {ref} | paired diff vs {ref} (± SE) | lr multiplier | "
                  "passes |", "|---|---|---|---|---|"]
        lines += [f"| {r['stage']} | {_row_text(r)} | x{r['lr_mult']:.3g} | "
                  f"{'yes' if r['passes'] else 'no'} |" for r in s["stages"]]
        lines.append("")
    return lines


def write(out: Path, state: Dict, names: List[str]) -> str:
    """Export the survivors, draw both PNGs and write ``report.md``; returns its text."""
    out = Path(out)
    sv = survivors(out)
    export(out, sv["programs"])
    plots.plot_progress(out, names, state)
    plots.plot_funnel(out, sv["stages"], sv["reference"])
    cfg = state["config"]
    task = "+".join(t["name"] for t in cfg["task"]) if isinstance(cfg["task"], list) \
        else cfg["task"]["name"]
    funnel_s: Optional[float] = funnel_summary(out / FUNNEL_DIR)["elapsed"]
    search_s = sum((RunDir(out / n).summary() or {}).get("elapsed_seconds", 0.0)
                   for n in names)
    verdict = (f"{len(sv['programs'])} survivor(s): " + ", ".join(s["name"] for s in
                                                                  sv["programs"])
               if sv["survived"] else "no survivor")
    lines = [f"# Discover report: {cfg['name']}", "",
             f"Config {state.get('source') or '(from Python)'}, task {task}; "
             f"{len(names) - 1} searches + one from the best, the funnel on the top "
             f"{state['options']['top']} distinct programs, {verdict}. Search time "
             f"{search_s:.0f} s, funnel {funnel_s:.0f} s (held-out re-checks not counted).", ""]
    lines += _searches(out, names, state) + _funnel(out, sv) + _survivors(sv)
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write(out / REPORT, text)
    return text
