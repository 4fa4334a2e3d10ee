"""File primitives of run, funnel and discover directories: atomic replacement of a file and
the one-writer lock of a directory. ``rundir`` re-exports them."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

from optevo.dsl.errors import OptevoError

LOCK = ".lock"


class RunDirError(OptevoError, ValueError):
    """A missing, incomplete or unreadable run directory (one line)."""


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the process's umask (changing it back at once)


def atomic_write(path, text: str):
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old or the new file,
    never a torn one: write a temporary file beside it, fsync, rename over."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would make it (mkstemp makes 0600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
