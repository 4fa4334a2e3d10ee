"""Discover: the whole method in one resumable pipeline (``optevo discover``).

The paper's procedure (Chen et al. 2023): several independent searches, then one more
started from the best program found; every result re-checked on fresh seeds against tuned
baselines; the winners re-tuned on larger tasks (the funnel); the survivors simplified and
exported. One directory OUT holds it all::

    OUT/discover.json        the config, the funnel config, the options and the steps done
                             (written atomically; the only state of the pipeline itself)
    OUT/search-1..S/         independent searches (seed = config seed + i - 1), each a run
                             directory with its own held-out re-check (summary.json)
    OUT/best-start.py        the best program of search-1..S by held-out figure
    OUT/search-best/         one more search started from it (the paper's "one more from
                             the best")
    OUT/funnel/              the funnel on the top K distinct programs of all searches
    OUT/survivors/NAME.py    the survivors (simplified bit-exactly) as optax modules
    OUT/report.md, progress.png, funnel.png

Invariants: a search with ``summary.json`` is finished and never run again; one with a
checkpoint is resumed (``run_search(..., resume=True)``), one without is started fresh (a
log written before its first checkpoint holds at most the start and is dropped); the funnel
resumes from its ``results.jsonl`` (no finished job runs twice); survivors, plots and the
report are pure functions of the files above and are rewritten on every run. Library code
raises one-line :class:`~optevo.dsl.errors.OptevoError` subclasses and never prints errors
or exits. ``runner`` (state, steps), ``report`` (survivors, markdown), ``plots`` (PNGs).
"""
