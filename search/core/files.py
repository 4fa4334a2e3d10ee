"""File primitives of run, funnel and discover directories: the append-only JSON-lines log,
atomic replacement of a file and the one-writer lock of a directory (``rundir`` re-exports
them), and the checked writes of the
files a user names (``-o``, ``--out``). The writes are ``optevo.dsl.outfiles``' (one place for
``simplify`` too): whole or not at all, a failure one :class:`WriteError` line naming the
path."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Dict, Iterator

from optevo.dsl.errors import OptevoError
from optevo.dsl.files import check_regular
from optevo.dsl.outfiles import WriteError, atomic_write, save_figure, write_output  # noqa: F401

LOCK = ".lock"


class RunDirError(OptevoError, ValueError):
    """A missing, incomplete or unreadable run directory (one line)."""


@contextlib.contextmanager
def exclusive(path):
    """Hold the write lock of directory ``path`` (created if need be) for the block: one
    writer per run (or funnel, or discover) directory. A second optevo process is refused at
    once with a one-line :class:`RunDirError` naming the process that holds it. The lock is an
    ``flock`` on ``DIR/.lock`` (which holds the holder's pid): the kernel drops it when the
    holder exits or is killed (kill -9 included), so no stale lock survives a crash."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    f = open(path / LOCK, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise RunDirError(f"{path}: in use by another optevo process (pid {holder}); wait for "
                          "it to finish, or use another directory") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()  # releases the lock


class JsonLines:
    """An append-only file of JSON objects, one per line, each flushed as it is written."""

    def __init__(self, path):
        self.path = Path(path)
        self._f = None

    def _regular(self):
        """A FIFO or device in a run directory would block a read for ever: one line."""
        try:
            check_regular(self.path)
        except OSError as e:
            raise RunDirError(f"{self.path}: {e.strerror}; move it away") from None

    def repair(self) -> int:
        """Drop a torn last line (a write cut by a kill); returns the number of full lines."""
        if not self.path.exists():
            return 0
        self._regular()
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)
        return data[:end].count(b"\n")

    def read(self) -> Iterator[Dict]:
        """Every complete line as a dict (a torn last line is skipped, not repaired)."""
        if not self.path.exists():
            return
        self._regular()
        with open(self.path, "rb") as f:  # bytes: a damaged byte is a line's error
            for i, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    return
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line.decode("utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise RunDirError(f"{self.path}:{i}: unreadable line ({e})") from None
                if not isinstance(rec, dict):
                    raise RunDirError(f"{self.path}:{i}: not a JSON object")
                yield rec

    def open(self):
        self._regular()
        self._f = open(self.path, "a", buffering=1)
        return self

    def append(self, obj: Dict):
        self._f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._f.flush()

    def sync(self):
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self):
        if self._f is not None:
            self.sync()
            self._f.close()
            self._f = None
