"""Live progress of a search: a rich panel on a terminal, plain lines in a log."""

from __future__ import annotations

import math
import sys
import time


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
        "restarts": s.restarts, "in_flight": loop.in_flight, "elapsed": t,
    }


def line(d: dict) -> str:
    return (f"[{d['elapsed']:7.1f}s] trained {d['trained']} ({d['evals_per_s']:.2f}/s)  "
            f"cached {d['cached']}  hit rate {d['hit_rate']:.0%}  best {d['best']:.4f} "
            f"({d['best_norm']:.3f} x tuned start)  median {d['median']:.4f}  "
            f"rejected {d['rejected']} (invalid {d['invalid']})  restarts {d['restarts']}")


class Progress:
    """Call with the search after every step; redraws at most every ``interval`` seconds."""

    def __init__(self, enabled: bool = True, interval: float = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.last = 0.0
        self.live = None

    def __call__(self, search, force: bool = False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        d = snapshot(search)
        if self.tty:
            self._rich(d)
        else:
            print(line(d), file=self.stream, flush=True)

    def _rich(self, d):
        from rich.live import Live
        from rich.table import Table
        t = Table(title="optevo search", show_header=False, box=None)
        rows = [("elapsed", f"{d['elapsed']:.1f} s"),
                ("trained", f"{d['trained']}  ({d['evals_per_s']:.2f} evals/s, "
                            f"{d['in_flight']} in flight)"),
                ("cache", f"{d['cached']} hits, hit rate {d['hit_rate']:.1%}"),
                ("best", f"{d['best']:.4f}  ({d['best_norm']:.3f} x the lr-tuned start)"),
                ("median", f"{d['median']:.4f}"),
                ("rejected", f"{d['rejected']}  (invalid {d['invalid']})"),
                ("restarts", str(d["restarts"]))]
        for k, v in rows:
            t.add_row(k, v)
        if self.live is None:
            self.live = Live(t, refresh_per_second=4, transient=False)
            self.live.start()
        else:
            self.live.update(t)

    def close(self):
        if self.live is not None:
            self.live.stop()
            self.live = None
