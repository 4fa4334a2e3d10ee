"""Stopping a search cleanly on Ctrl-C (SIGINT) or a scheduler's SIGTERM.

While the evolution loop runs, the first signal only asks it to stop (:attr:`Stop.requested`):
the loop finishes the step it is in (a result is applied and logged whole, never half), writes
a final checkpoint and returns, so that the report is written from what was trained and the
run resumes with ``--resume``. Outside the loop (the start's calibration, the held-out
re-check) and on a second signal, the signal raises :class:`KeyboardInterrupt` at once.

Handlers are installed after Ray has started (Ray's own SIGTERM handler in the driver ends it
with a C++ stack dump) and the previous ones are restored on exit. Only the main thread can
install handlers; elsewhere (a search run from a thread) signals keep their usual behaviour.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number


class Stop:
    """The stop request of one run: ``signal`` the first one received (or None)."""

    def __init__(self):
        self.signal: Optional[int] = None
        self.count = 0  # signals received so far
        self.defer = False  # True while the loop can stop at its next step

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.signal, 130)

    def _handle(self, signum, frame):
        self.count += 1
        first = self.signal is None
        if first:
            self.signal = signum
        if not (self.defer and first):
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        """Within: the first signal sets :attr:`requested` instead of raising."""
        self.defer = True
        try:
            yield self
        finally:
            self.defer = False

    @contextlib.contextmanager
    def installed(self):
        """Within: SIGINT and SIGTERM go to this object (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.getsignal(s) for s in SIGNALS}
        for s in SIGNALS:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
