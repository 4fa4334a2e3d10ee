"""The search core: configs, the run directory, regularized evolution and its state,
mutations, the population and cache, workers, the held-out re-check, inspection, and the
public Python API (``api``). It imports ``dsl``, ``proxy_tasks`` and ``simplify``, never the
funnel or the CLI."""
