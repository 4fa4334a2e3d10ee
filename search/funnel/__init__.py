"""Funnel selection (Chen et al. 2023, arXiv 2302.06675, "Generalization: program selection
and simplification"): re-tune and re-check programs on progressively larger tasks against
tuned baselines.

``config`` (stages, baselines, tuning grids), ``candidates`` (baselines, a run's best
programs, program files), ``plan`` (which jobs a candidate needs; the decision once they are
done), ``runner`` (stages on worker pools, ``results.jsonl``, resume), ``report`` (tables,
``report.md``, ``summary.json``, ``funnel.png``), ``ladder`` (does the funnel rank
well-known optimizers as published studies do? ``optevo ladder``). The command is
``optevo funnel`` (``optevo.search.cli.funnel``).
"""
