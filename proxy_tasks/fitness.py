"""From per-seed final losses to one fitness value (pure Python / numpy, no jax needed).

A program is trained on ``S`` seeds; seed ``s`` gives a final validation loss ``L_s`` and a
divergence flag ``d_s`` (see :func:`diverged`: the one rule, also in the engines). Then

* if any ``d_s`` is set, the fitness is the worst value, ``+inf`` (lower is better), so a
  program that blows up on one seed out of many can never win by its lucky seeds;
* otherwise the fitness is the mean ``L = (1/S) sum_s L_s`` with standard error
  ``SE = std_s(L_s, ddof=1) / sqrt(S)`` (``0`` for ``S = 1``).

Fitness values are compared across tasks after :func:`normalize`: ``L / L_baseline``, where
``L_baseline`` is the AdamW start program's mean loss on the same task and seeds.
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Optional

import numpy as np

WORST = float("inf")


class Aggregate(NamedTuple):
    """Result of :func:`aggregate`.

    mean: mean loss over seeds, or ``inf`` if any seed diverged.
    stderr: standard error of that mean (sample std with ddof=1 over sqrt(S)); ``inf`` if any
      seed diverged, ``0.0`` for a single seed.
    any_diverged / all_diverged: whether at least one / every seed diverged.
    n_diverged: how many seeds diverged.
    """

    mean: float
    stderr: float
    any_diverged: bool
    all_diverged: bool
    n_diverged: int


def diverged(final_loss, params_max_abs, max_abs_weight, xp=np):
    """The divergence rule, elementwise on arrays (``xp``: numpy, or ``jax.numpy`` inside
    the engines' compiled loop, where it is applied)::

        diverged = ~isfinite(L) | ~(max_i |w_i| <= max_abs_weight)

    A run diverged when its final loss ``L`` is NaN or +-inf, or when its largest absolute
    parameter is NaN, inf or above ``max_abs_weight`` (a NaN fails the comparison). The last
    test matters because blown-up weights can saturate a float32 softmax and read as a (near)
    perfect loss, or drive a bounded objective to a spuriously good value. (The engines also
    count a run whose training loss was ever not finite, and one where a program's statement
    ever gave a value that was not finite: its update is then NaN. Without that, a program
    could stop its weights by overflow, ``m / cosh(w)`` being 0 once ``cosh(w)`` is inf,
    and exploit where a task's answer lies.)
    """
    return ~xp.isfinite(final_loss) | ~(params_max_abs <= max_abs_weight)


def is_diverged(final_loss, params_max_abs, max_abs_weight: float) -> bool:
    """:func:`diverged` for one run (Python or numpy scalars, or 0-d jax arrays)."""
    loss, wmax = (np.asarray(x, np.float64) for x in (final_loss, params_max_abs))
    return bool(diverged(loss, wmax, float(max_abs_weight)))


def aggregate(losses: Iterable[float], diverged: Optional[Iterable[bool]] = None) -> Aggregate:
    """Mean and standard error of per-seed ``losses``; the worst value if any seed diverged.

    ``diverged`` holds one flag per seed (default: all False). A seed whose loss is not finite
    is treated as diverged even if its flag is False. With no diverged seed:
    ``mean = sum(L_s)/S`` and ``stderr = sqrt(sum((L_s - mean)^2) / (S - 1)) / sqrt(S)``
    (``0.0`` for ``S = 1``). With any diverged seed: ``mean = stderr = inf`` (worst fitness).
    """
    losses = np.asarray(list(losses), dtype=np.float64).reshape(-1)
    if losses.size == 0:
        raise ValueError("aggregate needs at least one seed")
    if diverged is None:
        flags = np.zeros(losses.shape, dtype=bool)
    else:
        flags = np.asarray(list(diverged), dtype=bool).reshape(-1)
        if flags.shape != losses.shape:
            raise ValueError(f"{losses.size} losses but {flags.size} divergence flags")
    flags = flags | ~np.isfinite(losses)
    n_div = int(flags.sum())
    if n_div:
        return Aggregate(WORST, WORST, True, n_div == losses.size, n_div)
    s = stats(losses)
    return Aggregate(s.mean, s.se, False, False, 0)


class Stats(NamedTuple):
    """Mean, sample standard deviation (ddof=1) and standard error of the mean of ``n``
    values (``sd = se = 0`` for one value)."""

    mean: float
    sd: float
    se: float
    n: int


def stats(values: Iterable[float]) -> Stats:
    """:class:`Stats` of ``values``: ``sd = sqrt(sum((x - mean)^2) / (n - 1))``,
    ``se = sd / sqrt(n)``. For a paired comparison pass the per-seed differences."""
    x = np.asarray(list(values), dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("stats needs at least one value")
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return Stats(float(x.mean()), sd, sd / math.sqrt(x.size), int(x.size))


def normalize(loss: float, baseline_loss: float) -> float:
    """``loss / baseline_loss``: below 1 is better than the baseline (the AdamW start).

    ``inf`` (a diverged program) stays ``inf``; NaN becomes ``inf``. The baseline must be a
    positive finite number (task ``val_loss`` values are positive by construction).
    """
    b = float(baseline_loss)
    if not (math.isfinite(b) and b > 0):
        raise ValueError(f"baseline loss must be positive and finite, got {baseline_loss!r}")
    x = float(loss)
    if math.isnan(x) or math.isinf(x):
        return WORST
    return x / b


# Rank statistics: how alike two tasks order the same programs (proxy fidelity, the ladder).

def rankdata(a) -> np.ndarray:
    """Ranks 1..n of ``a``, ties (inf included; nan counts as inf) given their average."""
    a = np.where(np.isnan(np.asarray(a, np.float64)), np.inf, a).astype(np.float64)
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    new = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new)
    counts = np.diff(np.r_[starts, len(s)])
    ranks = np.empty(len(a))
    ranks[order] = (starts + (counts + 1) / 2.0)[np.cumsum(new) - 1]
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho: Pearson correlation of the tie-averaged ranks (nan if one is constant)."""
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    d = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / d) if d > 0 else math.nan


def bootstrap_spearman(x, y, n: int = 1000, seed: int = 0):
    """2.5 and 97.5 percentiles of Spearman's rho over ``n`` resamples of the pairs."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), (n, len(x)))
    rhos = np.array([spearman(x[i], y[i]) for i in idx])
    rhos = rhos[np.isfinite(rhos)]
    return (float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))) if len(rhos) \
        else (math.nan, math.nan)
