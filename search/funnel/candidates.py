"""The funnel's candidates: the baselines of its config, the best distinct programs of search
runs (simplified bit-exactly, deduplicated by hash) and program files.

A candidate travels to workers as text: a program, or an optax baseline's one-line spec
(``optevo.proxy_tasks.baselines.specs``). Its weight-decay constant, where it has one (a live
``x = w * c`` in a program, ``weight_decay`` of an optax baseline), is what the funnel's
second tuning axis scales.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Tuple

from optevo.dsl.canon import program_hash
from optevo.dsl.library import find_program
from optevo.dsl.liveness import live_mask
from optevo.dsl.parse import parse
from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text
from optevo.simplify import simplify_exact

from ..core.views import load_ref
from ..core.rundir import RunDir, RunDirError, best_distinct
from .config import FunnelConfig, Stage


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    text: str          # program text, or an optax spec line
    baseline: bool
    optax: bool
    has_wd: bool
    source: str

    def setting_text(self, stage: Stage, j: int) -> str:
        """The candidate with its weight decay scaled by ``stage.wd_ratio ** j``."""
        if j == 0:
            return self.text
        f = stage.wd_factor(j)
        if self.optax:
            kind, h = parse_spec(self.text)
            return spec_text(kind, **{**h, "weight_decay": h["weight_decay"] * f})
        return scale_weight_decay(parse(self.text), f).text()


def wd_sites(program) -> List[Tuple[int, int]]:
    """(statement, argument) positions of the constant ``c`` in live ``x = w * c`` statements,
    ``w`` being the weights input (not reassigned before)."""
    sites, w_is_input = [], True
    for i, (s, live) in enumerate(zip(program.stmts, live_mask(program))):
        if live and w_is_input and s.op == "mul" and "w" in s.args:
            sites += [(i, a) for a, x in enumerate(s.args) if not isinstance(x, str)]
        if s.target == "w":
            w_is_input = False
    return sites


def scale_weight_decay(program, factor: float):
    stmts = list(program.stmts)
    for i, a in wd_sites(program):
        args = list(stmts[i].args)
        args[a] = float(args[a]) * factor
        stmts[i] = dataclasses.replace(stmts[i], args=tuple(args))
    return program.replace(stmts=tuple(stmts))


def run_top_programs(run_dir: Path, k: int, seen: set) -> List[Tuple[str, object]]:
    """The ``k`` best trained programs of a search run (by fitness, id breaking ties), other
    than the start program, simplified bit-exactly, one per hash and none whose hash is in
    ``seen``."""
    out = []
    for r in best_distinct(RunDir.existing(run_dir).records(), include_start=False):
        p = simplify_exact(parse(r.program), strict=True)
        h = program_hash(p)
        if h in seen:
            continue
        seen.add(h)
        out.append((f"{run_dir.name}#{r.id}", p))
        if len(out) == k:
            break
    return out


def make_candidates(cfg: FunnelConfig, inputs: List[str], top: int, say=print
                    ) -> List[Candidate]:
    """Baselines first, then the candidates of ``inputs`` (run directories and program files)
    under distinct names; a program equal (by hash) to an earlier one is skipped."""
    cands: List[Candidate] = []
    seen: set = set()
    for name, d in cfg.baselines.items():
        if "program" in d:
            p = find_program(d["program"])
            seen.add(program_hash(p))
            cands.append(Candidate(name, p.text(), True, False, bool(wd_sites(p)), d["program"]))
        else:
            text = spec_text(d["optax"], **{k: v for k, v in d.items() if k != "optax"})
            wd = parse_spec(text)[1]["weight_decay"] != 0
            cands.append(Candidate(name, text, True, True, wd, f"optax.{d['optax']}"))
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            progs = run_top_programs(path, top, seen)
            if not progs:
                raise RunDirError(f"{path}: the run has no trained program besides the start")
            items = [(n, p, f"{path}") for n, p in progs]
        else:
            p = load_ref(item)[0]  # a file, a library name or RUN_DIR:ID
            h = program_hash(p)
            if h in seen:
                say(f"optevo funnel: {item} computes the same as an earlier candidate; skipped")
                continue
            seen.add(h)
            items = [(path.stem.replace(":", "_") if path.suffix else
                      str(item).replace("/", "_").replace(":", "_").strip("_."), p, item)]
        taken = {c.name for c in cands}
        for name, p, src in items:
            base, n = name, 2
            while name in taken:
                name, n = f"{base}_{n}", n + 1
            taken.add(name)
            cands.append(Candidate(name, p.text(), False, False, bool(wd_sites(p)), src))
    return cands
