"""Optax optimizers as baselines: their one-line specs and their transformations.

AdamW (with bias correction and epsilon, which programs cannot express) and Lion are not
programs, so they get their own path: ``optevo.proxy_tasks.optax_engine.OptaxEngine``
trains the transformation :func:`make_transformation` builds in the engines' one training
loop (the same seeds, init and data keys, batches, gradient, divergence checks and final
validation loss as a program). The learning rate at step ``t`` is
``learning_rate * multiplier * task.lr_schedule(t, steps)``, as a program with the
constant ``lr = lr * learning_rate`` would see it.

The numeric hyperparameters (learning rate, betas, eps, weight decay, hyper-learning-rate)
are arguments of the engine's compiled function, so tuning them never recompiles; ``levels``
(the height of a hypergradient stack, :data:`STATIC`) and ``weights`` (an L2L weights file,
:data:`STRINGS`) are structural. A baseline travels to workers as one line of text::

    optax:adamw learning_rate=0.001 b1=0.9 b2=0.999 eps=1e-08 weight_decay=0.0001
    optax:hyper_sgd learning_rate=0.1 hyper_lr=0.001 weight_decay=0.0 levels=2

Kinds besides AdamW and Lion (``HYPER`` lists their hyperparameters and defaults):

* ``hyper_sgd``, ``hyper_sgdm``, ``hyper_adam``: SGD, SGD with momentum and Adam whose
  hyperparameters are adapted by ``levels`` stacked levels of hypergradient descent with step
  ``hyper_lr`` (Chandra et al. 2022; :mod:`optevo.proxy_tasks.baselines.hypergrad`). The tuned
  learning rate is the initial one; the task's schedule multiplies every step.
* ``l2l``: the learned LSTM optimizer (Andrychowicz et al. 2016; :mod:`.l2l`) with the
  weights ``weights`` (a packaged name, default ``digits_mlp``, or an ``.npz`` path); its
  learning rate multiplies the LSTM's output (1: as meta-trained).

Every new kind has ``weight_decay`` (default 0, off): L2 decay ``wd * w`` added to the
gradient before the optimizer, so the funnel's weight-decay axis applies to all kinds.
"""

from __future__ import annotations

import functools
from typing import Dict, Tuple

import optax

from . import hypergrad, l2l

PREFIX = "optax:"
HYPER = {  # kind -> hyperparameter names and defaults (optax's, except weight decay)
    "adamw": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8,
              "weight_decay": 1e-4},
    "lion": {"learning_rate": 1e-4, "b1": 0.9, "b2": 0.99, "weight_decay": 1e-2},
    # hypergradient kinds: hyper_lr is the largest decade 10^-k whose lr-tuned loss on
    # digits_mlp (4 seeds, lr 1e-4..1) is within 1% of the best lr-tuned loss over
    # hyper_lr in {0, 10^-k} (the sweep: BENCHMARKS.md, issue 12)
    "hyper_sgd": {"learning_rate": 0.3, "hyper_lr": 1e-3, "weight_decay": 0.0, "levels": 1},
    "hyper_sgdm": {"learning_rate": 0.1, "momentum": 0.9, "hyper_lr": 1e-2,
                   "weight_decay": 0.0, "levels": 1},
    "hyper_adam": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8,
                   "hyper_lr": 1e-3, "weight_decay": 0.0, "levels": 1},
    "l2l": {"learning_rate": 1.0, "weight_decay": 0.0, "weights": l2l.PACKAGED},
}
STATIC = ("levels",)   # integers that change the compiled function
STRINGS = ("weights",)  # text values (no whitespace), also structural
MAX_LEVELS = 8


def _coupled_wd(wd, opt):
    return optax.chain(optax.add_decayed_weights(wd), opt)


def make_transformation(kind: str, h, scale=1.0, schedule=None) -> optax.GradientTransformation:
    """The optax transformation of ``kind`` with hyperparameters ``h``: learning rate
    ``h["learning_rate"] * scale * schedule(count)`` (``schedule`` default 1); for the
    hypergradient kinds ``h["learning_rate"] * scale`` is the initial, adapted rate and
    ``schedule`` multiplies every step."""
    sched = schedule or (lambda count: 1.0)
    lr0 = h["learning_rate"] * scale
    lr = (lambda count: lr0 * sched(count))
    if kind == "adamw":
        return optax.adamw(lr, b1=h["b1"], b2=h["b2"], eps=h["eps"],
                           weight_decay=h["weight_decay"])
    if kind == "lion":
        return optax.lion(lr, b1=h["b1"], b2=h["b2"], weight_decay=h["weight_decay"])
    if kind == "l2l":
        return _coupled_wd(h["weight_decay"], l2l.l2l_optimizer(_l2l_weights(h["weights"]), lr))
    levels = int(h["levels"])
    if kind == "hyper_sgd":
        opt = hypergrad.hyper_sgd(lr0, h["hyper_lr"], levels, sched)
    elif kind == "hyper_sgdm":
        opt = hypergrad.hyper_sgdm(lr0, h["momentum"], h["hyper_lr"], levels, sched)
    else:
        opt = hypergrad.hyper_adam(lr0, h["b1"], h["b2"], h["hyper_lr"], levels, h["eps"],
                                   sched)
    return _coupled_wd(h["weight_decay"], opt)


@functools.lru_cache(maxsize=8)
def _l2l_weights(spec: str):
    return l2l.load(spec)


def _value(kind: str, k: str, v):
    """A hyperparameter value in its type (float; int for ``levels``; str for ``weights``)."""
    if k in STRINGS:
        v = str(v)
        if not v or any(c.isspace() for c in v):
            raise ValueError(f"optax {kind}: {k} must be a name or path without spaces")
        return v
    x = float(v)
    if k in STATIC:
        if x != int(x) or not 0 <= x <= MAX_LEVELS:
            raise ValueError(f"optax {kind}: {k} must be an integer 0..{MAX_LEVELS}, got {v!r}")
        return int(x)
    return x


def spec_text(kind: str, **hyper) -> str:
    """The one-line form of a baseline; unknown kinds, keys or bad values raise ValueError."""
    if kind not in HYPER:
        raise ValueError(f"unknown optax baseline {kind!r}; known: {', '.join(HYPER)}")
    bad = set(hyper) - set(HYPER[kind])
    if bad:
        raise ValueError(f"optax {kind}: unknown hyperparameter(s) {sorted(bad)}; "
                         f"known: {', '.join(HYPER[kind])}")
    h = {k: _value(kind, k, v) for k, v in {**HYPER[kind], **hyper}.items()}
    fmt = (lambda k: str(h[k]) if k in STATIC + STRINGS else repr(h[k]))
    return PREFIX + kind + "".join(f" {k}={fmt(k)}" for k in HYPER[kind])


def parse_spec(text: str) -> Tuple[str, Dict[str, float]]:
    """Inverse of :func:`spec_text` (``levels`` an int, ``weights`` a str, the rest floats)."""
    if not text.startswith(PREFIX):
        raise ValueError(f"not an optax baseline: {text[:40]!r}")
    kind, *pairs = text[len(PREFIX):].split()
    if kind not in HYPER:
        spec_text(kind)  # raises
    try:
        hyper = {k: _value(kind, k, v) for k, v in (p.split("=", 1) for p in pairs)}
    except ValueError as e:
        raise ValueError(f"bad optax baseline {text[:60]!r}: {e}") from None
    spec_text(kind, **hyper)  # validates
    return kind, {**HYPER[kind], **hyper}


def baseline_spec(name: str) -> str:
    """A baseline's one-line spec from a kind (``hyper_adam``, defaults) or a spec line
    (``optax:hyper_sgd levels=2``); ValueError if neither."""
    text = name if name.startswith(PREFIX) else PREFIX + name
    kind, h = parse_spec(text)
    return spec_text(kind, **h)


def is_spec(text: str) -> bool:
    return text.startswith(PREFIX)
