"""The library of known optimizers shipped in ``configs/programs`` (one program file each)."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Dict

from .parse import load
from .program import Program, ProgramError

START = "adam_style"  # the paper's AdamW start program: every search begins here


def library_dir() -> Path:
    return Path(str(resources.files("optevo.configs") / "programs"))


def library_names():
    return sorted(p.stem for p in library_dir().glob("*.py"))


def library_program(name: str) -> Program:
    path = library_dir() / f"{name}.py"
    if not path.exists():
        raise KeyError(f"no library program {name!r}; known: {', '.join(library_names())}")
    return load(path)


def find_program(spec) -> Program:
    """The program ``spec`` names: a library name (``adam_style``) or a program file.

    The one resolver of "library name or file" (search start, funnel baselines, CLI).
    Raises :class:`ProgramError` with one line listing the library names and the closest."""
    names = library_names()
    if str(spec) in names:
        return library_program(str(spec))
    if Path(spec).is_file():
        return load(spec)
    close = difflib.get_close_matches(str(spec), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ProgramError(f"expected a library program ({', '.join(names)}) or an existing "
                       f"program file, got {str(spec)!r}{hint}")


def load_program(spec) -> Program:
    """``optevo.dsl.load``: a program file (its errors name the file: ``parse.load``) or a
    library name (``"lion"``, as the CLI accepts); a bare unknown name is
    :func:`find_program`'s one line listing the library."""
    text = str(spec)
    if Path(spec).exists() or "/" in text or text.endswith(".py"):
        return load(spec)
    return find_program(spec)


def library() -> Dict[str, Program]:
    return {name: library_program(name) for name in library_names()}


def example_program(name: str) -> Program:
    """A program shipped in ``configs/examples`` (e.g. the paper's ``raw_search_output``)."""
    path = library_dir().parent / "examples" / f"{name}.py"
    if not path.exists():
        raise KeyError(f"no example program {name!r}")
    return load(path)


def start_program() -> Program:
    """The AdamW start program of the paper (no bias correction, no epsilon)."""
    return library_program(START)
