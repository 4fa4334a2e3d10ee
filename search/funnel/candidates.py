"""The funnel's candidates: the baselines of its config, the best distinct programs of search
runs (simplified bit-exactly, deduplicated by hash) and program files; for the ladder's check
(d), mutants of the AdamW start and of Muon (:func:`mutant_candidates`).

A candidate travels to workers as text: a program, or an optax baseline's one-line spec
(``optevo.proxy_tasks.baselines.specs``). Every candidate is tuned on weight decay too, the
funnel's second axis: a program's decay sites (``optevo.dsl.decay``: ``c * f(w)`` added into
its update, ``f`` odd) are scaled, and a program without one gets decoupled decay added as
optax adds it; an optax baseline's ``weight_decay`` is scaled, and one whose decay is off by
default (the hypergradient and learned optimizers) starts from AdamW's 1e-4. Either way the
line includes decay switched off, and ``decay_added`` says where optevo added it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from optevo.dsl.canon import program_hash
from optevo.dsl.library import find_program, library_program
from optevo.dsl.decay import scale_decay, tunable_decay
from optevo.dsl.parse import parse
from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text
from optevo.simplify import simplify_exact

from ..core.mutations import MutationFailed, default_weights, mutate
from ..core.views import load_ref
from ..core.distinct import equivalence_keys, iter_distinct
from ..core.rundir import RunDir, RunDirError
from ..core.tuning import spec_with_decay
from .config import FunnelConfig, Stage


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    text: str          # program text, or an optax spec line
    baseline: bool
    optax: bool
    has_wd: bool
    source: str
    decay_added: bool = False  # the program had no decay site (or the baseline decay 0)

    def setting_text(self, stage: Stage, j: int) -> str:
        """The candidate with its weight decay scaled by ``stage.wd_ratio ** j``."""
        if j == 0:
            return self.text
        f = stage.wd_factor(j)
        if self.optax:
            return spec_with_decay(self.text, f)
        return scale_decay(parse(self.text), f).text()


def program_candidate(name: str, program, baseline: bool, source: str) -> Candidate:
    """A program as a candidate, ready for the decay axis (decoupled decay added if none)."""
    p, added = tunable_decay(program)
    return Candidate(name, p.text(), baseline, False, True, source, added)


def optax_candidate(name: str, text: str, source: str) -> Candidate:
    """An optax baseline as a candidate; decay off by default starts from AdamW's."""
    added = parse_spec(text)[1]["weight_decay"] == 0.0
    return Candidate(name, spec_with_decay(text, 1.0), True, True, True, source, added)


def run_top_programs(run_dir: Path, k: int, seen: set) -> List[Tuple[str, object]]:
    """The ``k`` best trained programs of a search run (by fitness, id breaking ties), other
    than the start program, simplified bit-exactly, one per hash and none whose hash is in
    ``seen``, nor equivalent to one already taken from any run (``core.distinct``: the same
    simplified hash or functional fingerprint; its keys join ``seen``). Walked lazily."""
    out = []
    for r in iter_distinct(RunDir.existing(run_dir).records(), include_start=False):
        p = simplify_exact(parse(r.program), strict=True)
        h = program_hash(p)
        keys = set(equivalence_keys(r.hash, r.program))
        if h in seen or not seen.isdisjoint(keys):
            continue
        seen.add(h)
        seen.update(keys)
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
            cands.append(program_candidate(name, p, True, d["program"]))
        else:
            text = spec_text(d["optax"], **{k: v for k, v in d.items() if k != "optax"})
            cands.append(optax_candidate(name, text, f"optax.{d['optax']}"))
    return cands + more_candidates(cands, inputs, top, say, seen)


def more_candidates(cands: List[Candidate], inputs: List[str], top: int, say=print,
                    seen: Optional[set] = None) -> List[Candidate]:
    """The candidates of ``inputs`` (run directories and program files) under names distinct
    from those of ``cands``; a program equal (by hash) to one of ``cands`` (or in ``seen``),
    or to an earlier input, is skipped. ``cands`` is not changed."""
    cands = list(cands)
    n_before = len(cands)
    seen = set() if seen is None else seen
    as_tuned = {program_hash(parse(c.text)) for c in cands if not c.optax}
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
            cand = program_candidate(name, p, False, src)
            h = program_hash(parse(cand.text))  # as tuned: decay added where it had none
            if h in as_tuned:
                say(f"optevo funnel: {src} computes the same as an earlier candidate; skipped")
                continue
            as_tuned.add(h)
            taken.add(name)
            cands.append(cand)
    return cands[n_before:]


MUTANT_PARENTS = ("adam_style", "muon")  # the AdamW start and Muon (check (d) of the ladder)
MUTANT_DISTANCES = (1, 2, 3)


def mutant_candidates(n: int, seed: int, taken: List[Candidate], max_draws: int = 50
                      ) -> List[Candidate]:
    """``n`` mutants (the search's own mutation registry, default weights) of the AdamW start
    and of Muon in turn, at 1, 2 and 3 mutations in turn, named ``mut-PARENT-dD-I``; each
    drawn with ``default_rng([seed, i, draw])`` until it computes something new (by hash)
    among ``taken`` and the mutants before it. Deterministic in ``seed``."""
    seen = {program_hash(parse(c.text)) for c in taken if not c.optax}
    out: List[Candidate] = []
    for i in range(n):
        parent_name = MUTANT_PARENTS[i % len(MUTANT_PARENTS)]
        d = MUTANT_DISTANCES[(i // len(MUTANT_PARENTS)) % len(MUTANT_DISTANCES)]
        for draw in range(max_draws):
            rng = np.random.default_rng([seed, i, draw])
            p = library_program(parent_name)
            h = program_hash(p)
            try:
                for _ in range(d):
                    res = mutate(rng, p, h, default_weights(), program_hash, 32, 100)
                    p, h = res.child, res.hash
            except MutationFailed:
                continue
            cand = program_candidate(f"mut-{parent_name}-d{d}-{i}", p, False,
                                     f"mutant of {parent_name}, {d} mutation(s), seed {seed}")
            h = program_hash(parse(cand.text))  # as tuned: decay added where it had none
            if h not in seen:
                seen.add(h)
                out.append(cand)
                break
    return out
