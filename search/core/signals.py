"""Ctrl-C honoured at any moment of a command, including while Python imports JAX.

Python's own SIGINT handler raises :class:`KeyboardInterrupt` in whatever Python code runs
when the signal arrives, and some code loses it or turns it into something else:

- an import: numpy and JAX catch the failure of their C extensions' start and raise an
  ``ImportError`` instead (a traceback, exit status 1, a half-imported module);
- a garbage-collector callback (JAX registers ``_xla_gc_callback``, which runs on every
  collection, so often while JAX starts and compiles), a ``__del__`` or a weakref callback:
  Python prints "Exception ignored in ..." and carries on, so the interrupt is lost and the
  command (a search: to the end of its budget) goes on;
- JAX's backend start, which starts a warning timer thread just before the ``try`` that
  cancels it: interrupted there, the process waits a minute for the thread at exit.

:func:`interrupts` (the CLI's ``main`` holds it for the whole command) fixes these.
Invariants while it is held, in the main thread:

- SIGINT raises ``KeyboardInterrupt`` only at a safe point: no import, ``__del__``, gc
  callback or JAX backend start on the stack. Elsewhere it is recorded and delivered again
  50 ms later (a timer thread calls ``_thread.interrupt_main``) until it lands at a safe
  point; so a Ctrl-C while the modules load takes effect once they are loaded (seconds).
- A ``KeyboardInterrupt`` lost all the same (a callback not recognised above) reaches
  ``sys.unraisablehook``, which delivers it again instead of printing it.
- A delivery goes to the SIGINT handler installed at that moment: during the search loop
  that is ``stopping.Stop``, which stops the loop as a first Ctrl-C does.
- :attr:`Interrupts.received` says whether a SIGINT came, :attr:`Interrupts.raised` whether
  a ``KeyboardInterrupt`` was raised for it.
- On exit the previous handler and hook are back, and no delivery happens after it.

Elsewhere than the main thread, and for other signals, nothing changes. A SIGINT in the
first tens of milliseconds, while Python itself starts (before ``main``), is Python's.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import os
import signal
import sys
import threading
from typing import Optional

RETRY_SECONDS = 0.05  # delay of a delivery again
_IMPORTING = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
# JAX's backend start (jax/_src/xla_bridge.py: tpu_client_timer_callback starts a 60 s
# threading.Timer before the try that cancels it)
_NOT_INTERRUPTIBLE = (f"jax{os.sep}_src{os.sep}xla_bridge.py",)


def _unsafe(frame) -> bool:
    """Is a ``KeyboardInterrupt`` raised in ``frame`` lost, changed or harmful on its way up: an
    import, a ``__del__``, a gc callback or JAX's backend start on the stack?"""
    callbacks = {getattr(cb, "__code__", None) for cb in list(gc.callbacks)}
    while frame is not None:
        code = frame.f_code
        if (code.co_filename in _IMPORTING or code.co_name == "__del__" or code in callbacks
                or code.co_filename.endswith(_NOT_INTERRUPTIBLE)):
            return True
        frame = frame.f_back
    return False


class Interrupts:
    """The SIGINT state of one command: :attr:`received` (the signal, or None) and
    :attr:`raised` (a ``KeyboardInterrupt`` was raised for it)."""

    def __init__(self):
        self.received: Optional[int] = None
        self.raised = False
        self._lock = threading.RLock()  # the handler may run while this thread holds it
        self._timer: Optional[threading.Timer] = None
        self._closed = False
        self._old_hook = sys.unraisablehook

    # --- the handler and the hook ---------------------------------------------------------
    def handle(self, signum, frame):
        self.received = signum
        if self._closed:
            return  # processed while the old handler is put back: the command has ended
        if _unsafe(frame):
            self._again()
            return
        self.raised = True
        raise KeyboardInterrupt

    def unraisable(self, info):
        if isinstance(info.exc_value, KeyboardInterrupt) and not self._closed:
            self._again()  # lost in a callback: deliver it again, to whoever handles it now
            return
        self._old_hook(info)

    def _again(self):
        with self._lock:
            if self._closed or self._timer is not None:  # one delivery scheduled at a time
                return
            self._timer = threading.Timer(RETRY_SECONDS, self._deliver)
            self._timer.daemon = True
            self._timer.start()

    def _deliver(self):
        with self._lock:
            self._timer = None  # before: the handler it runs may schedule the next one
            if not self._closed:
                _thread.interrupt_main(signal.SIGINT)

    def close(self):
        self._closed = True
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


_HELD: list = []  # the Interrupts of the interrupts() blocks now held (main thread)


def received() -> bool:
    """Did a SIGINT come while :func:`interrupts` is held? (An exception raised then may be
    one that an interrupt was turned into by code that lost it.)"""
    return any(state.received is not None for state in _HELD)


@contextlib.contextmanager
def interrupts():
    """Within: SIGINT as the module docstring states. Outside the main thread, which alone
    can install handlers, nothing changes (and the returned :class:`Interrupts` stays empty)."""
    state = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, state.handle)
    sys.unraisablehook = state.unraisable
    _HELD.append(state)
    try:
        yield state
    finally:
        _HELD.remove(state)
        state._closed = True  # first: from here on the handler only records (no call before)
        try:
            state.close()
        finally:
            sys.unraisablehook = state._old_hook
            signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
