"""Judges of what a program computes, not of its text: the planted checks' criteria.

A planted check (``scripts/experiments/planted_rediscovery.py``) asks whether a search found
a known algorithm. Reading the text would be fooled both ways: ``interp(g, g, v)`` is ``g``
however it is written, and ``clip(3e9 * sin(x), 0.6)`` is a sign without the ``sign`` op.
So each judge runs the program (the reference executor, :func:`optevo.dsl.execute.run`) on
drawn inputs and reads what it does:

* :func:`reads_kind`: what an op's argument depends on, for an op statement that feeds the
  update. ``"momentum"`` when the argument depends on ``g`` and on a state slot whose new
  value depends on ``g`` (the sign check: signum, Lion; with ``orthogonalize``, the Muon
  check), ``"gradient"`` when it depends on ``g`` but on no such slot, ``""`` when no such
  statement reads ``g``. Dependence: one step on random ``5 x 7`` leaves, each input redrawn
  in turn, after the exact simplification.
* :func:`depends_on`: whether the update reads an input at all (``lr``: found programs
  often ignore it, taking a constant step with no schedule).
* :func:`normalization_kind`: whether the step is normalized per coordinate by a running
  estimate of the gradient's magnitude (the Adam check), defined in its docstring.
* :func:`sign_behaviour_kind`: whether the step is a sign of momentum by behaviour at given
  gradient sizes (the sign check's judge since 2026-12-07: a saturating function of momentum
  counts where it saturates at the task's own gradient sizes), defined in its docstring.

Invariant: every judge is deterministic (fixed draws) and pure; it never trains.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from optevo.dsl.execute import run, trace
from optevo.dsl.liveness import update_mask
from optevo.dsl.program import INPUTS, Program

from .exact import simplify_exact

SHAPE = (5, 7)  # one matrix leaf: orthogonalize, row_mean and col_mean see a real matrix


def _flat(x) -> np.ndarray:
    parts = x if isinstance(x, list) else [x]
    return np.concatenate([np.ravel(np.asarray(p, np.float64)) for p in parts])


def _differs(a, b) -> bool:
    a, b = _flat(a), _flat(b)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b)) | \
            (np.abs(a - b) <= 1e-4 * (np.abs(a) + np.abs(b) + 1e-6))
    return not bool(np.all(same))


def _draw(rng, name: str):
    """A random value of input ``name``: ``lr`` a scalar in [0.5, 1.5], the others one
    :data:`SHAPE` leaf of N(0, 1)."""
    return np.float32(rng.uniform(0.5, 1.5)) if name == "lr" else \
        [rng.standard_normal(SHAPE).astype(np.float32)]


def reads_kind(program: Program, op: str) -> str:
    """What feeds the update through an ``op(...)`` statement (``sign``, ``orthogonalize``),
    judged by what its argument computes: ``"momentum"`` when it depends on ``g`` and on a
    state slot whose new value depends on ``g``; ``"gradient"`` when it depends on ``g`` but
    on no such slot; ``""`` when no ``op`` statement that feeds the update reads ``g``.
    ``interp(g, g, v)`` is ``g``, so ``sign(interp(g, g, v))`` is ``"gradient"``."""
    p = simplify_exact(program)
    rng = np.random.default_rng(0)
    base = [_draw(rng, n) for n in INPUTS]
    envs = trace(p, *base)
    moved = {n: trace(p, *[_draw(rng, n) if k == j else base[j] for j in range(len(INPUTS))])
             for k, n in enumerate(INPUTS)}
    returned = dict(zip(("update", "m", "v"), p.returns))
    carries = {slot for slot in ("m", "v")  # state slots whose new value depends on g
               if _differs(envs[-1][returned[slot]], moved["g"][-1][returned[slot]])}
    kind, feeds = "", update_mask(p)
    for i, s in enumerate(p.stmts):
        if s.op != op or not feeds[i] or not isinstance(s.args[0], str):
            continue
        arg = s.args[0]
        deps = {n for n in INPUTS if _differs(envs[i][arg], moved[n][i][arg])}
        if "g" in deps and deps & carries:
            return "momentum"
        if "g" in deps:
            kind = "gradient"
    return kind


def depends_on(program: Program, name: str) -> bool:
    """Whether the update of one step depends on input ``name`` (``"lr"``: does the program
    read its learning rate at all?), by redrawing it on random ``5 x 7`` leaves."""
    rng = np.random.default_rng(0)
    base = [_draw(rng, n) for n in INPUTS]
    moved = [_draw(rng, n) if n == name else x for n, x in zip(INPUTS, base)]
    with np.errstate(all="ignore"):
        return _differs(run(program, *base)[0], run(program, *moved)[0])


def sign_kind(program: Program) -> str:
    """:func:`reads_kind` of ``sign``: the sign check's judge."""
    return reads_kind(program, "sign")


def orthogonalize_kind(program: Program) -> str:
    """:func:`reads_kind` of ``orthogonalize``: the Muon check's judge (``"momentum"``:
    Muon's orthogonalised momentum, or an orthogonalisation of anything that reads it)."""
    return reads_kind(program, "orthogonalize")


# the normalization judge's probe: T steps, the last K compared
STEPS, LAST = 60, 20
INVARIANT = 0.05  # largest relative change of the last K updates under rescaled gradients
SPREAD = 1.5  # a sign: every |u_i| alike; Adam: |u_i| follows each coordinate's signal/noise
BOUND = 20.0  # largest |u| over the median |u|: a running estimate, not the current |g|


def _updates(program: Program, grads: Sequence[np.ndarray], lr: float = 1.0,
             w: float = 0.0) -> List[np.ndarray]:
    """The updates of ``program`` over a gradient stream (one leaf per step), flat, with
    ``w`` the same in every coordinate (0: a decay term is 0), the ``lr`` input fixed and
    the state starting at zeros, as the engines start it."""
    shape = np.shape(grads[0])
    ws = [np.full(shape, w, np.float32)]
    m, v, out = [np.zeros(shape, np.float32)], [np.zeros(shape, np.float32)], []
    for g in grads:
        u, m, v = run(program, ws, [g], m, v, np.float32(lr))
        out.append(_flat(u).reshape(-1) * np.ones(int(np.prod(shape))))
    return out


def _change(a: List[np.ndarray], b: List[np.ndarray]) -> float:
    """Largest relative change, over the last :data:`LAST` steps, of ``b`` against ``a``."""
    worst = 0.0
    for x, y in zip(a[-LAST:], b[-LAST:]):
        scale = np.linalg.norm(x)
        worst = max(worst, np.inf if scale == 0 else float(np.linalg.norm(y - x) / scale))
    return worst


def normalization_report(program: Program, lr: float = 1.0) -> Dict[str, float]:
    """The normalization judge's figures (see :func:`normalization_kind`)."""
    rng = np.random.default_rng(0)
    n = int(np.prod(SHAPE))
    mean = rng.uniform(-1.0, 1.0, n)  # each coordinate's signal ...
    size = 10.0 ** rng.uniform(-1.0, 1.0, n)  # ... and its own gradient scale
    grads = [(size * (mean + rng.standard_normal(n))).reshape(SHAPE).astype(np.float32)
             for _ in range(STEPS)]
    each = (10.0 ** rng.uniform(-2.0, 2.0, n)).reshape(SHAPE)
    p = simplify_exact(program)
    with np.errstate(all="ignore"):
        base = _updates(p, grads, lr)
        common = _updates(p, [(100.0 * g).astype(np.float32) for g in grads], lr)
        per = _updates(p, [(each * g).astype(np.float32) for g in grads], lr)
        last = np.abs(np.stack(base[-LAST:]))
        finite = bool(np.all(np.isfinite(last)))
        med = float(np.median(last)) if finite else np.nan
        q10, q90 = (np.percentile(last, q, axis=1) for q in (10, 90))
        spread = float(np.median(q90 / np.maximum(q10, 1e-30))) if finite else np.nan
        return {"finite": float(finite), "common_change": _change(base, common),
                "per_coordinate_change": _change(base, per), "spread": spread,
                "peak": float(np.max(last) / med) if finite and med > 0 else np.inf}


def normalization_kind(program: Program, lr: float = 1.0) -> str:
    """Whether the update is normalized per coordinate by a running estimate of the
    gradient's magnitude (Adam, RMSprop, AdaBelief), judged by behaviour on a probe: a
    stream of :data:`STEPS` gradients on 35 coordinates, ``g_i = s_i (mu_i + z)`` with each
    coordinate's scale ``s_i = 10^U(-1, 1)``, signal ``mu_i ~ U(-1, 1)`` and noise
    ``z ~ N(0, 1)``, run from zero state with ``w = 0`` and the ``lr`` input at ``lr`` (the
    planted checks pass the program's own tuned multiplier, the ``lr`` a task feeds it at
    the first step; 1 by default, as before 2026-12-07); its last
    :data:`LAST` updates ``u`` are read. In order:

    * ``""``: not scale-free: scaling every gradient by 100 changes ``u`` by more than
      :data:`INVARIANT` (relative, at some step); SGD, momentum, Nesterov;
    * ``"global"``: scale-free, but scaling each coordinate by its own ``10^U(-2, 2)``
      changes ``u``: a normalization shared by the coordinates (``g / |g|_2``);
    * ``"sign"``: per coordinate scale-free, but the update keeps no magnitude across
      coordinates: the 90th over the 10th percentile of ``|u_i|`` is below :data:`SPREAD`
      (signum, Lion, ``sign(g)``);
    * ``"current"``: as Adam, but the largest ``|u|`` exceeds :data:`BOUND` times the median:
      normalized by the current gradient (``m / |g|``), not by a running estimate;
    * ``"adaptive"``: all four tests passed: the Adam family.

    A non-finite update on the probe is ``"diverged"``."""
    r = normalization_report(program, lr)
    if not r["finite"]:
        return "diverged"
    if r["common_change"] > INVARIANT:
        return ""
    if r["per_coordinate_change"] > INVARIANT:
        return "global"
    if r["spread"] < SPREAD:
        return "sign"
    if r["peak"] > BOUND:
        return "current"
    return "adaptive"


# the sign judge's probe (sign_behaviour_kind): a 16 x 16 leaf, T steps, the last update read
SIGN_SHAPE, SIGN_STEPS, SIGN_NOISE = (16, 16), 100, 2.0
SIGN_W = 0.5  # w in every coordinate: a decay or a box term adds the same to each
TWO_VALUED = 0.25  # each value's 10-90 percentile range, over the gap between the two values
MIN_SHARE = 0.1  # the rarer of the two values taken by at least this share of coordinates
DESCENT = 0.6  # share of coordinates whose value has the sign of their gradient's mean
HISTORY = 0.1  # share of coordinates whose value flips when the earlier gradients are negated


def _two_values(u: np.ndarray):
    """The best split of ``u`` into a lower and an upper group (1-D two-means, exact):
    (threshold, within-group spread over the gap between the groups' medians, rarer share)."""
    x = np.sort(u)
    n = x.size
    c1, c2 = np.cumsum(x), np.cumsum(x * x)
    k = np.arange(1, n)  # the lower group is x[:k]
    lo_var = c2[k - 1] - c1[k - 1] ** 2 / k
    hi_var = (c2[-1] - c2[k - 1]) - (c1[-1] - c1[k - 1]) ** 2 / (n - k)
    cut = int(k[np.argmin(lo_var + hi_var)])
    lo, hi = x[:cut], x[cut:]
    gap = float(np.median(hi) - np.median(lo))
    width = max(float(np.percentile(g, 90) - np.percentile(g, 10)) for g in (lo, hi))
    spread = width / gap if gap > 0 else np.inf
    return 0.5 * (lo[-1] + hi[0]), spread, min(cut, n - cut) / n


def sign_behaviour_report(program: Program, sizes: Sequence[float],
                          lr: float = 1.0) -> List[Dict[str, float]]:
    """The sign judge's figures at each gradient size (see :func:`sign_behaviour_kind`)."""
    p, n, out = simplify_exact(program), int(np.prod(SIGN_SHAPE)), []
    for size in sizes:
        rng = np.random.default_rng(0)
        mean = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n)
        raw = mean + SIGN_NOISE * rng.standard_normal((SIGN_STEPS, n))
        raw *= float(size) / np.median(np.abs(raw))  # the stream's median |g| is `size`
        flipped = np.concatenate([-raw[:-1], raw[-1:]])  # the history negated, g_T kept
        with np.errstate(all="ignore"):
            u, alt = (_updates(p, [r.reshape(SIGN_SHAPE).astype(np.float32)
                                   for r in stream], lr, SIGN_W)[-1]
                      for stream in (raw, flipped))
            finite = bool(np.all(np.isfinite(u)) and np.all(np.isfinite(alt)))
            if not finite:
                out.append({"size": float(size), "finite": 0.0})
                continue
            cut, spread, share = _two_values(u)
            upper = u > cut  # alt is read at u's threshold: which coordinates flip
            out.append({"size": float(size), "finite": 1.0, "spread": spread, "share": share,
                        "descent": float(np.mean(upper == (mean > 0))),
                        "history": float(np.mean(upper != (alt > cut)))})
    return out


def sign_behaviour_kind(program: Program, sizes: Sequence[float], lr: float = 1.0) -> str:
    """Whether the update is a sign of momentum, judged by behaviour at each gradient size
    in ``sizes`` (the sign check passes the task's own: the smallest, median and largest of
    its fitness seeds' median |g| at the start). The probe: :data:`SIGN_STEPS` gradients on
    256 coordinates, ``g_i = c (mu_i + 2 z)`` with signal ``|mu_i| ~ U(0.5, 1.5)`` of random
    sign, noise ``z ~ N(0, 1)`` and ``c`` such that the median |g| is the size; ``w = 0.5``
    in every coordinate (a decay or box term then adds the same to each), the ``lr`` input
    at ``lr`` (as in :func:`normalization_kind`), zero state. Its last update ``u`` is read,
    at every size:

    * ``"diverged"``: ``u`` is not finite;
    * ``""``: ``u`` does not take two values: split by the best 1-D two-means, each group's
      10-90 percentile range exceeds :data:`TWO_VALUED` of the gap between the groups'
      medians, or the rarer value covers under :data:`MIN_SHARE` of the coordinates (SGD,
      momentum, Adam: a continuum); or the upper value does not go with a positive signal on
      at least :data:`DESCENT` of the coordinates (``w <- w - u``: not a descent);
    * ``"gradient"``: two values, but negating every gradient before the last flips the value
      of fewer than :data:`HISTORY` of the coordinates (``sign(g)``: no memory);
    * ``"momentum"``: all passed (signum, Lion, and a saturating function of momentum, such
      as ``tanh(k m)`` or ``clip(m, c)``, at sizes where it saturates).

    A soft sign that is linear at some of the sizes is not a sign there, so it does not
    count: the verdict must hold at every size."""
    kinds = []
    for r in sign_behaviour_report(program, sizes, lr):
        if not r["finite"]:
            return "diverged"
        if r["spread"] > TWO_VALUED or r["share"] < MIN_SHARE or r["descent"] < DESCENT:
            kinds.append("")
        else:
            kinds.append("gradient" if r["history"] < HISTORY else "momentum")
    return "" if "" in kinds else ("gradient" if "gradient" in kinds else "momentum")
