"""Reading a text file the user names (a config, a program): only a regular file is opened.

A FIFO, a socket or a device given as a file would block a read for ever (or never end):
:func:`read_text` refuses anything but a regular file with an :class:`OSError` whose
``strerror`` says what the path is, so callers that already turn ``OSError`` into one line
(``cannot read: ...``) need nothing more. The check is made on the open descriptor (opened
non-blocking, so opening a FIFO does not wait for a writer), after a first ``stat`` that
keeps devices from being opened at all.
"""

from __future__ import annotations

import errno
import os
import stat

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_regular(mode: int, path) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    if not stat.S_ISREG(mode):
        what = next((text for test, text in _KINDS if test(mode)), "not a regular file")
        raise OSError(errno.EINVAL, f"{what}, not a regular file", str(path))


def check_regular(path) -> None:
    """:class:`OSError` unless ``path`` is a regular file (or does not exist: the caller's
    ``open`` then says so)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    _check_regular(mode, path)


def read_text(path, encoding: str = "utf-8-sig") -> str:
    """The text of the regular file ``path`` (universal newlines, as ``Path.read_text``);
    :class:`OSError` for anything else, ``UnicodeDecodeError`` for bytes that are not
    ``encoding``. The default allows a leading UTF-8 byte-order mark."""
    _check_regular(os.stat(path).st_mode, path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _check_regular(os.fstat(fd).st_mode, path)  # replaced since the stat?
        f = os.fdopen(fd, "r", encoding=encoding)
    except BaseException:
        os.close(fd)
        raise
    with f:
        return f.read()
