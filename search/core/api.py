"""The Python API for notebooks and scripts: run a search, open a run directory.

    from optevo.search import run, load_run

    r = run({"search": {"max_evals": 200}, "workers": {"count": 0}})   # or a Config / a YAML path
    r = run("quick", quiet=True, progress=lambda d: print(d["trained"], d["best"]))
    r = load_run("runs/quick-20261130-101500")
    r.best(3)           # best distinct programs, simplified, with held-out figures
    r.holdout()         # the held-out re-check rows (fresh seeds)
    r.rows()            # one dict per evaluation; r.dataframe(): a pandas.DataFrame
    r.front()           # the loss-versus-length front (PySR's hall of fame)
    opt = r.to_optax(1727)   # an optax.GradientTransformation, with the run's tuning

Errors are the library's one-line :class:`~optevo.dsl.errors.OptevoError` subclasses
(``ConfigError``, ``RunDirError``, ...). Opening a run (:func:`load_run`) runs none of its code:
the plugins its ``config.yaml`` names are imported only by ``run(..., resume=True)``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

from optevo.dsl.errors import OptevoError

from .config import Config, config_from_dict, load_config
from .rundir import RunDir


class Run:
    """A search run directory (finished, or still running: every call reads the files)."""

    def __init__(self, path):
        self.rundir = RunDir.existing(path)
        self.path = self.rundir.path

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> Optional[Config]:
        """The run's config, validated without importing its plugins (``RunDir.config``)."""
        return self.rundir.config()

    def records(self):
        """Every logged child, as :class:`~optevo.search.core.rundir.Record`."""
        return self.rundir.records()

    def rows(self) -> List[Dict]:
        """One plain dict per logged child (``pandas.DataFrame(run.rows())``)."""
        return [r.to_json() for r in self.records()]

    def dataframe(self):
        """The log as a ``pandas.DataFrame``, one row per child (``pip install
        optevo[pandas]``; per-seed losses as a list column)."""
        try:
            import pandas as pd
        except ImportError:
            raise OptevoError("Run.dataframe() needs pandas: pip install 'optevo[pandas]' "
                              "(or use Run.rows(), plain dicts)") from None
        return pd.DataFrame(self.rows()).set_index("id")

    def front(self, k: int = 200) -> List[Dict]:
        """The loss-versus-length front of the best ``k`` distinct programs, as PySR's hall
        of fame: for each length (statements after exact simplification) the best program,
        kept only if it beats every shorter one; shortest first."""
        best: Dict[int, Dict] = {}
        for row in self.best(k):
            n = row["simplified_statements"]
            if n not in best or row["loss"] < best[n]["loss"]:
                best[n] = row
        out, low = [], float("inf")
        for n in sorted(best):
            if best[n]["loss"] < low:
                out.append(best[n])
                low = best[n]["loss"]
        return out

    def best(self, k: int = 5) -> List[Dict]:
        """The ``k`` best distinct programs, simplified exactly (``optevo show RUN_DIR``)."""
        from .views import best_programs
        return best_programs(self.path, k)

    def holdout(self) -> List[Dict]:
        """The held-out re-check: the best programs and the start on fresh seeds."""
        return self.rundir.holdout_rows()

    def program(self, ident):
        """The program logged under id ``ident``."""
        from optevo.dsl import parse
        return parse(self.rundir.record(ident).program)

    def tuned(self, ident):
        """The program ``ident`` with the tuning it was reported at (``tuned.TunedProgram``:
        the re-check's lr multiplier and decay, else the search's; the task's schedule)."""
        from .tuned import load_tuned
        return load_tuned(f"{self.path}:{ident}")

    def to_optax(self, ident, **hyperparameters):
        """The program ``ident`` as an ``optax.GradientTransformation``: the module
        ``optevo export RUN_DIR:ID`` writes, called with ``hyperparameters``. Its defaults
        are the run's tuning: ``learning_rate`` the tuned schedule, in optax's units (the
        program's lr unit folded in), the tuned decay, the program's ``b1``, ``b2``, ...;
        live state slots only."""
        from optevo.dsl.codegen import module_function, to_module_source
        t = self.tuned(ident)
        fn = module_function(to_module_source(t.program, source=t.label, tuning=t.tuning()),
                             filename=f"<optevo export {t.label}>")
        return fn(**hyperparameters)


def load_run(run_dir) -> Run:
    """Open an existing run directory."""
    return Run(run_dir)


def run(config: Union[Config, Dict, str, os.PathLike], run_dir=None,
        resume: bool = False, quiet: bool = False,
        progress: Optional[Callable[[Dict], None]] = None) -> Run:
    """Run a search (``resume``: continue the one in ``run_dir``) and return its :class:`Run`.

    ``config``: a :class:`Config`, a dict of config keys (validated like a YAML file), or the
    path of a YAML config. ``run_dir`` defaults to ``runs/NAME-TIME``. ``quiet``: print
    nothing (no live display, no report; ``report.md`` is still written). ``progress``:
    called with the live display's figures (``progress.snapshot``: ``trained``, ``best``,
    ``best_norm``, ``elapsed``, ``eta``, ...) as the display refreshes, and once at the end."""
    from .run import check_new_run_dir, run_search
    if isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = config_from_dict(config)
    else:
        cfg = load_config(config)
    if run_dir is None:
        run_dir = Path(f"runs/{cfg.name or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not resume:
        check_new_run_dir(run_dir)
    if quiet:
        cfg = cfg.model_copy(update={"progress": cfg.progress.model_copy(
            update={"enabled": False})})
    with open(os.devnull, "w") if quiet else contextlib.nullcontext(None) as out:
        run_search(cfg, run_dir, resume=resume, out=out, on_progress=progress)
    return Run(run_dir)
