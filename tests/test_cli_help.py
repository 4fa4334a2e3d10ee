"""``optevo --help``/``--version`` are quick (issue #22): building the parser imports nothing
heavy (no JAX), and every subcommand's --help says each option's default once."""

import argparse
import re
import subprocess
import sys

import pytest

from optevo.search.cli import build_parser

HEAVY = ("jax", "numpy", "optax", "ray", "matplotlib", "yaml", "pydantic", "optevo.dsl")

PROBE = """
import sys
from optevo.search.cli import build_parser, main
build_parser()
for argv in (["--version"], ["--help"], ["search", "--help"], ["l2l", "train", "--help"]):
    try:
        main(argv)
    except SystemExit as e:
        assert e.code == 0, (argv, e.code)
print(" ".join(m for m in {heavy!r} if m in sys.modules) or "none")
"""


def test_parser_help_and_version_import_no_jax():
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "none", proc.stdout[-300:]
    assert proc.stdout.startswith("optevo ")  # --version printed


def test_the_error_class_is_the_libraries_own():
    """common.OptevoError (loaded without optevo.dsl's __init__) is the class library code
    raises: the CLI's ``except OptevoError`` catches both, and UsageError is one."""
    from optevo.dsl.errors import OptevoError
    from optevo.dsl.program import ProgramError
    from optevo.search.cli import common
    assert common.OptevoError is OptevoError and issubclass(ProgramError, common.OptevoError)
    assert issubclass(common.UsageError, OptevoError)


def _subparsers(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _subparsers(sub, path + (name,))


SUBPARSERS = dict((" ".join(path), sub) for path, sub in _subparsers(build_parser()))


def test_every_subcommand_is_checked():
    assert {"eval", "search", "show", "lineage", "plot", "diff", "export", "simplify",
            "funnel", "ladder", "discover", "analyze", "l2l", "l2l train"} <= set(SUBPARSERS)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command", sorted(SUBPARSERS))
def test_each_default_is_said_once(command):
    parser = SUBPARSERS[command]
    out = "".join(parser.format_help().split())  # (textwrap breaks lines at hyphens too)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.help or action.help is argparse.SUPPRESS:
            continue
        text = _flat(formatter._expand_help(action))
        assert "".join(text.split()) in out  # what --help prints for this option
        name = "/".join(action.option_strings) or action.dest
        said = re.search(r"default", action.help, re.I) or (
            action.default is not None and f"({action.default})" in action.help)
        if said:  # the text says the default: nothing added to it
            assert text == _flat(action.help), f"{command} {name}: {text}"
        assert len(re.findall(r"\(default\b", text)) <= 1, f"{command} {name}: {text}"
        assert "(default: None)" not in text and "(default: [])" not in text, \
            f"{command} {name}: {text}"


def test_defaults_not_in_the_help_text_are_added():
    """Where the help text says nothing of it, the formatter adds the default."""
    lines = _flat(SUBPARSERS["l2l train"].format_help())
    assert "Adam meta-learning rate (default: 0.003)" in lines
    assert "meta-steps (default 300) --batch" in lines  # said by the text: not again
    assert "(default: the task's)" in _flat(SUBPARSERS["eval"].format_help())
    assert "RUN_DIR: how many best programs (default: 5)" in \
        _flat(SUBPARSERS["show"].format_help())
