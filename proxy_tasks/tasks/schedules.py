"""Learning-rate schedules for the ``lr`` input of programs (order 1; the engines multiply the
value by the run's learning-rate multiplier, and programs scale it by their own constant).

A schedule is a jittable function ``(step, total_steps) -> float32 scalar``. Named kinds:

* ``constant``: 1.
* ``cosine``: cosine decay from 1 to ``final`` over the run.
* ``warmup_cosine``: linear warm-up from ``1/warmup`` to 1 over the first ``warmup`` steps
  (``warmup`` is a step count, or a fraction of the run when below 1), then cosine decay to
  ``final``; the usual schedule of transformer language models.

``make("warmup_cosine", warmup=0.05)`` or ``make({"kind": "warmup_cosine", "warmup": 0.05})``.
A bad kind, key or number (``warmup`` a finite number >= 0, ``final`` a finite number) is a
ValueError in one line; :func:`problem` gives its text (the ``schedule`` option's rule).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Mapping, Optional, Union

import jax.numpy as jnp

KINDS = ("constant", "cosine", "warmup_cosine")

Schedule = Callable[..., jnp.ndarray]


def cosine_schedule(step, total_steps, warmup: int = 0, final: float = 0.0):
    """Linear warm-up over ``warmup`` steps, then cosine decay from 1 to ``final``."""
    step = jnp.asarray(step, jnp.float32)
    total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
    w = jnp.float32(max(warmup, 0))
    warm = jnp.where(w > 0, jnp.minimum((step + 1.0) / jnp.maximum(w, 1.0), 1.0), 1.0)
    frac = jnp.clip((step - w) / jnp.maximum(total - w, 1.0), 0.0, 1.0)
    cos = final + (1.0 - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    return (warm * cos).astype(jnp.float32)


def warmup_steps(warmup: float, total_steps: int) -> int:
    """``warmup`` as a whole number of steps (a value below 1 is a fraction of the run)."""
    w = float(warmup)
    if w < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    return int(round(w * total_steps)) if w < 1 else int(w)


def _number(name: str, x, low: Optional[float] = None) -> None:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) \
            or (low is not None and x < low):
        raise ValueError(f"{name} must be a finite number{'' if low is None else f' >= {low:g}'}"
                         f", got {x!r}")


def make(spec: Union[str, Mapping], warmup: float = 0.0, final: float = 0.0,
         total_steps: int = 0) -> Schedule:
    """A schedule from a kind name or a mapping ``{kind, warmup, final}``. ``total_steps`` is
    needed only to resolve a fractional ``warmup``."""
    _number("warmup", warmup, 0.0)
    _number("final", final)
    if isinstance(spec, Mapping):
        extra = set(spec) - {"kind", "warmup", "final"}
        if extra:
            raise ValueError(f"unknown schedule key(s) {sorted(extra)}; use kind, warmup, final")
        return make(spec.get("kind", "constant"), spec.get("warmup", warmup),
                    spec.get("final", final), total_steps)
    kind = str(spec)
    if kind == "constant":
        return lambda step, total: jnp.float32(1.0)
    if kind == "cosine":
        return lambda step, total: cosine_schedule(step, total, 0, final)
    if kind == "warmup_cosine":
        w = warmup_steps(warmup, total_steps) if total_steps else int(warmup)
        return lambda step, total: cosine_schedule(step, total, w, final)
    raise ValueError(f"unknown lr schedule {kind!r}; use one of {', '.join(KINDS)}")


def for_export(task, steps: int):
    """The schedule ``task`` feeds its ``lr`` input over runs of ``steps`` steps, as an
    exported module writes it (``dsl.codegen.Schedule``); None for a constant one, and for a
    task whose ``lr_schedule`` is its own (a plugin's): the export then says so."""
    from optevo.dsl.codegen import Schedule
    from .base import Task
    if type(task).lr_schedule is Task.lr_schedule:
        return None
    spec, opts = getattr(task, "schedule", None), getattr(task, "schedule_options", None)
    if spec is None or opts is None:
        return None
    if isinstance(spec, Mapping):
        opts = {**opts, **{k: v for k, v in spec.items() if k != "kind"}}
        spec = spec.get("kind", "constant")
    final = float(opts.get("final", 0.0))
    to = "0" if final == 0 else f"{final:g} x the peak"
    if spec == "constant":
        return None
    if spec == "cosine":
        return Schedule(cosine_schedule, steps, f"cosine decay from the peak to {to} over "
                        f"{steps} steps", (0, final),
                        "optax.cosine_decay_schedule({peak}, {steps}" +
                        (f", alpha={final!r})" if final else ")"))
    if spec == "warmup_cosine":
        total = opts.get("total_steps") or steps
        w = warmup_steps(opts.get("warmup", 0.0), total) if total else int(opts.get("warmup", 0))
        return Schedule(cosine_schedule, steps, f"linear warm-up to the peak over {w} steps "
                        f"(step t at (t + 1) / {w} of it), then cosine decay to {to} by step "
                        f"{steps}", (w, final))
    return None


def problem(spec) -> Optional[str]:
    """None if :func:`make` takes ``spec``, else why not (one line)."""
    try:
        make(spec)
    except ValueError as e:
        return str(e)
    return None
