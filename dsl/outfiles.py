"""Files written whole or not at all, and never a silent failure.

Every file optevo writes goes through :func:`atomic_write` (run, funnel and discover
directories: ``optevo.search.core.files`` re-exports it) or, for what a user names on the
command line (a PNG, an exported module, a weights file), :func:`write_output` and
:func:`save_figure`. It lives here, in the lowest layer, because ``simplify`` (``optevo
analyze``'s plot) writes too. Invariants:

- A reader, or a crash, sees the old file or the new one, never a torn one: the data go to a
  temporary file beside the target, are fsynced, and are renamed over it.
- A write that fails (a full disk, a read-only or missing directory, a file too large) is a
  :class:`WriteError`, one line naming the path and the system's reason; the temporary file
  is removed and the target is untouched.
- :func:`write_output` writes exactly the path given (matplotlib, given a name without a
  suffix, writes ``NAME.png`` beside it), refuses a target that is not a regular file (a
  device such as ``/dev/full``, a FIFO, a directory) instead of replacing it, and checks that
  the file then holds every byte. A symbolic link is followed: its target is replaced.
- Figures are rendered into memory first, so a rendering error writes nothing either.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Union

from .errors import OptevoError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the process's umask (changing it back at once)


class WriteError(OptevoError):
    """A file that could not be written (one line: the path and the reason)."""


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def atomic_write(path, data: Union[str, bytes], *, shown=None):
    """Write ``data`` (text or bytes) to ``path`` so that a reader (or a crash) sees the old or
    the new file, never a torn one: write a temporary file beside it, fsync, rename over. A
    failure is a :class:`WriteError` naming ``shown`` (default ``path``)."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would make it (mkstemp makes 0600)
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise WriteError(f"{shown or path}: cannot write: {_reason(e)}") from None
        raise


def write_output(path, data: Union[str, bytes]) -> Path:
    """Write the output file ``path`` that a user named (see the module docstring); returns
    ``path`` once it holds all of ``data``."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if not raw:
        raise WriteError(f"{path}: nothing to write")
    try:
        mode = os.stat(path).st_mode  # follows a link
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise WriteError(f"{path}: cannot write: {_reason(e)}") from None
    if mode is not None and not stat.S_ISREG(mode):  # a device (/dev/full), a FIFO, ...
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise WriteError(f"{path}: {what}; give the path of a file to write")
    target = Path(os.path.realpath(path))
    atomic_write(target, raw, shown=path)
    try:
        size = os.stat(target).st_size
    except OSError as e:
        raise WriteError(f"{path}: cannot write: {_reason(e)}") from None
    if size != len(raw):
        raise WriteError(f"{path}: cannot write: {size} of {len(raw)} bytes written")
    return path


def save_figure(fig, path, **savefig_kw) -> Path:
    """A matplotlib figure as the file ``path``, in the format its suffix names (PNG without
    one), through :func:`write_output`; returns ``path``."""
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    formats = fig.canvas.get_supported_filetypes()
    if fmt not in formats:
        raise WriteError(f"{path}: cannot write a figure as .{fmt}; use one of "
                         + ", ".join(f".{k}" for k in sorted(formats)))
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **savefig_kw)
    return write_output(path, buf.getvalue())
