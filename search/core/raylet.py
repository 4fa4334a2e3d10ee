"""The raylet watch: the loss of the local Ray under a search becomes a one-line error within
seconds instead of a hang (Ray calls from the driver can block for good once the raylet is
gone). Linux ``/proc`` only; elsewhere nothing is watched."""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

_ACTIVE: List["RaylWatch"] = []  # the watches running, closed before Ray is shut down


def _children(pid: int) -> List[Tuple[int, str]]:
    """(pid, command line) of the live child processes of ``pid`` (Linux ``/proc``)."""
    out = []
    for d in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
            if int(stat[1]) == pid and stat[0] != "Z":
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    out.append((int(d), f.read().replace(b"\0", b" ").decode(errors="replace")))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class RaylWatch:
    """Watches the raylet of the local Ray this driver started. When it dies (killed, OOM),
    Ray calls from the driver may block for good: :meth:`check` then raises
    the given error at the driver's next poll, and if the driver is still alive
    ``grace`` seconds later (blocked inside Ray), the watcher prints the one-line error and
    ends the process as a kill would (the run resumes from its checkpoint and log)."""

    def __init__(self, raylet: int, error, grace: float = 20.0, every: float = 1.0):
        import threading
        self.raylet, self.grace, self.every, self.lost = raylet, grace, every, False
        self.error = error  # the exception class :meth:`check` raises
        self.message = f"the local Ray stopped (its raylet, pid {raylet}, is gone)"
        self._stop = threading.Event()
        _ACTIVE.append(self)
        threading.Thread(target=self._watch, daemon=True, name="raylet-watch").start()

    @classmethod
    def local(cls, error) -> Optional["RaylWatch"]:
        """A watch of the raylet this process started (None if there is none)."""
        pids = [p for p, cmd in _children(os.getpid()) if "raylet/raylet" in cmd]
        return cls(pids[0], error) if pids else None

    def _watch(self):
        import sys
        while not self._stop.wait(self.every):
            if not _alive(self.raylet):
                self.lost = True
                if not self._stop.wait(self.grace):
                    print(f"optevo: error: {self.message}; nothing logged is lost: continue "
                          "with --resume", file=sys.stderr, flush=True)
                    os._exit(2)
                return

    def check(self):
        if self.lost:
            raise self.error(self.message)

    def close(self):
        self._stop.set()
        if self in _ACTIVE:
            _ACTIVE.remove(self)


def close_watches():
    """Stop every watch before this process shuts its Ray down on purpose: a watch left
    running sees the raylet go and, 20 s later, ends the process (it did: ``optevo discover``
    died after its funnel, whose first stage's pool started Ray and whose last stage's pool
    shut it down, before the report was written)."""
    for watch in list(_ACTIVE):
        watch.close()
