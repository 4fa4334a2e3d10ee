"""Live progress of a search: a rich panel on a terminal, plain lines in a log."""

from __future__ import annotations

import math
import sys
import time

from optevo.dsl.liveness import NO_LR  # noqa: F401 (also read by tests)


def snapshot(loop) -> dict:
    """Figures of a running search (``evolution.RegularizedEvolution``)."""
    s = loop.state
    t = max(loop.elapsed(), 1e-9)
    rejected = sum(s.rejected.values())
    return {
        "trained": s.n_trained, "cached": s.n_cached, "generated": s.n_generated,
        "evals_per_s": s.n_trained / t, "best": s.best.loss if s.best else math.nan,
        "best_norm": s.best.normalized if s.best else math.nan,
        "median": s.population.median_loss(), "hit_rate": s.cache.hit_rate,
        "invalid": s.rejected.get("invalid", 0), "rejected": rejected,
        "restarts": s.restarts, "in_flight": len(loop.flight), "elapsed": t,
        "best_ignores_lr": bool(s.best) and _ignores_lr(s.best.program),
        **_budget(loop, t, s.n_trained / t),
    }


def _ignores_lr(text: str, _cache={}) -> bool:
    """Whether the program ``text`` never reads lr (``liveness.reads_lr``), remembered."""
    if text not in _cache:
        from optevo.dsl.liveness import reads_lr
        from optevo.dsl.parse import parse
        if len(_cache) > 1000:
            _cache.clear()
        _cache[text] = not reads_lr(parse(text))
    return _cache[text]


def _budget(loop, t: float, rate: float) -> dict:
    """What is left of ``search.max_evals`` / ``search.time_limit``, and when it ends."""
    cfg = loop.cfg.search
    evals_left = None if cfg.max_evals is None else max(0, cfg.max_evals - loop.state.n_trained)
    time_left = None if cfg.time_limit is None else max(0.0, cfg.time_limit - t)
    etas = [x for x in (time_left, evals_left / rate if evals_left is not None and rate > 0
                        else None) if x is not None]
    return {"evals_left": evals_left, "time_left": time_left,
            "eta": min(etas) if etas else None}


def hall_of_fame(loop, k: int = 5, _cache={}) -> list:
    """The ``k`` best distinct programs alive (and the best ever): (id, loss, normalized,
    statements of the simplified program, its text), like PySR's hall of fame."""
    from optevo.dsl.parse import parse
    from optevo.simplify import simplify_exact
    s = loop.state
    seen, out = set(), []
    members = list(s.population.members) + ([s.best] if s.best else [])
    for m in sorted(members, key=lambda m: (m.loss if math.isfinite(m.loss) else math.inf,
                                            m.id)):
        if m.hash in seen or not math.isfinite(m.loss):
            continue
        seen.add(m.hash)
        if m.hash not in _cache:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[m.hash] = simplify_exact(parse(m.program))
        prog = _cache[m.hash]
        out.append((m.id, m.loss, m.normalized, len(prog.stmts), prog.text()))
        if len(out) == k:
            break
    return out


def _eta(d: dict) -> str:
    return "no limit" if d.get("eta") is None else f"{d['eta']:.0f} s left"


def line(d: dict) -> str:
    return (f"[{d['elapsed']:7.1f}s] trained {d['trained']} ({d['evals_per_s']:.2f}/s)  "
            f"cached {d['cached']}  hit rate {d['hit_rate']:.0%}  best {d['best']:.4f} "
            f"({d['best_norm']:.3f} x tuned start){NO_LR if d['best_ignores_lr'] else ''}  "
            f"median {d['median']:.4f}  "
            f"rejected {d['rejected']} (invalid {d['invalid']})  restarts {d['restarts']}  "
            f"ETA {_eta(d)}")


class Progress:
    """Call with the search after every step; redraws at most every ``interval`` seconds."""

    def __init__(self, enabled: bool = True, interval: float = None, stream=None,
                 callback=None):
        self.stream = stream or sys.stderr
        self.enabled, self.callback = enabled, callback  # callback(snapshot) (the Python API)
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.last = 0.0
        self.live = None

    def __call__(self, search, force: bool = False):
        if not self.enabled and self.callback is None:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        d = snapshot(search)
        if self.callback is not None:
            self.callback(d)
        if not self.enabled:
            return
        if self.tty:
            self._rich(d, hall_of_fame(search))
        else:
            print(line(d), file=self.stream, flush=True)

    def _rich(self, d, fame):
        from rich.console import Group
        from rich.live import Live
        from rich.table import Table
        t = Table(title="optevo search", show_header=False, box=None)
        rows = [("elapsed", f"{d['elapsed']:.1f} s"),
                ("trained", f"{d['trained']}  ({d['evals_per_s']:.2f} evals/s, "
                            f"{d['in_flight']} in flight)"),
                ("cache", f"{d['cached']} hits, hit rate {d['hit_rate']:.1%}"),
                ("best", f"{d['best']:.4f}  ({d['best_norm']:.3f} x the tuned start)"
                         + (NO_LR if d["best_ignores_lr"] else "")),
                ("median", f"{d['median']:.4f}"),
                ("rejected", f"{d['rejected']}  (invalid {d['invalid']})"),
                ("restarts", str(d["restarts"])),
                ("budget", " / ".join(x for x in (
                    None if d["evals_left"] is None else f"{d['evals_left']} evals left",
                    None if d["time_left"] is None else f"{d['time_left']:.0f} s left")
                    if x) or "no limit"),
                ("ETA", _eta(d))]
        for k, v in rows:
            t.add_row(k, v)
        hof = Table(title="hall of fame (best distinct programs alive, simplified)",
                    show_header=True, box=None)
        for col in ("id", "loss", "x start", "length", "program"):
            hof.add_column(col, overflow="fold")
        for pid, loss, norm, n, text in fame:
            body = "; ".join(ln.strip() for ln in text.splitlines()[1:-1]) + \
                (NO_LR if _ignores_lr(text) else "")
            hof.add_row(str(pid), f"{loss:.4f}", f"{norm:.3f}", str(n), body)
        view = Group(t, hof)
        if self.live is None:
            self.live = Live(view, refresh_per_second=4, transient=False)
            self.live.start()
        else:
            self.live.update(view)

    def close(self):
        if self.live is not None:
            self.live.stop()
            self.live = None
