"""How a search begins (:meth:`.evolution.RegularizedEvolution.init`): its state, fresh or
resumed, and for a fresh one the start program calibrated as its first member.

* :func:`open_state`: with ``resume``, the checkpoint plus the log lines written after it
  (``state.resumed``); else, or where the run starts again, a fresh state with the run's id
  (``RunDir.new_run_id``: the one in ``run.json`` kept, if any) and, with islands, their
  migration settings.
* :func:`begin`: the start program calibrated on the loop's pool (:func:`calibrated_start`,
  ``tuning.calibrate_start``: its lr multiplier tuned on the fitness seeds, each task's own
  for a suite, then its weight decay); the calibrated scorer becomes the loop's, the start
  is cached, logged and copied into every slot of the population (``EvolutionState.begin``);
  then the seeds of ``search.seed_population`` are listed (``seeding.py``).

The loop passes itself: ``loop`` has ``cfg``, ``pool``, ``scorer``, ``hurdle``, ``state``,
``fingerprint_of`` and ``log``.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from optevo.dsl.canon import program_hash
from optevo.dsl.parse import parse

from .jobs import JobId
from .population import CacheEntry, Member
from .seeding import seed_programs
from .state import EvolutionState, resumed
from .tuning import calibrate_start
from .views import load_ref


def open_state(cfg, rundir, fingerprint_of: Callable[[str], Optional[str]],
               resume: bool) -> Tuple[EvolutionState, bool]:
    """The run's state, and whether it is fresh (see the module doc)."""
    state = resumed(rundir, cfg.search.population, fingerprint_of,
                    cfg.search.restart_after) if resume else None
    if state is not None:
        return state, False
    sc = cfg.search
    state = EvolutionState.fresh(cfg.seed, sc.population, sc.islands)
    state.run_id = rundir.new_run_id(keep=True)
    if sc.islands > 1:
        state.migrate_every, state.migrant = sc.migrate_every, sc.migrant
    return state, True


def calibrated_start(loop):
    """The start program calibrated on ``loop``'s pool (``tuning.calibrate_start``): its
    member, cache entry, calibration and fitness (with the hurdle's figure, if any)."""
    cfg = loop.cfg
    cal = calibrate_start(loop.pool, load_ref(cfg.search.start)[0].text(), loop.scorer,
                          cfg.search.start, [t.name for t in cfg.tasks], JobId.child(0))
    start = Member(0, None, None, program_hash(parse(cal.program)), cal.program)
    fit = cal.scorer(cal.result)
    entry = CacheEntry(fit.value, 1.0, fit.stderr, False, 0)
    if loop.hurdle:
        entry.hurdle = loop.hurdle.figure(cal.result, cal.scorer)
    return start, entry, cal, fit


def begin(loop):
    """A fresh search's first member and its seed list (see the module doc); ``loop.state``
    is :func:`open_state`'s fresh state, its log open."""
    start, entry, cal, fit = calibrated_start(loop)
    loop.scorer = cal.scorer
    loop.state.cache.put(start.hash, entry, loop.fingerprint_of(start.program))
    loop.log(start, entry, cal.result, fit)
    loop.state.begin(start.scored(entry), cal, fit.value)
    if loop.cfg.search.seed_population:
        loop.state.seed_list = seed_programs(loop.cfg.search.seed_population,
                                             loop.cfg.search.population)
