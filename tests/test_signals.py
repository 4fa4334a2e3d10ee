"""Ctrl-C (SIGINT) at any moment of ``optevo search``, including while Python imports JAX
(issue #19): it is always honoured, within a bounded time, with exit status 130, no
traceback, and, once the run directory exists, the continue line, with a directory that
``--resume --check`` accepts.

What used to happen: a SIGINT in the first seconds ended in an ``ImportError`` traceback (numpy
turns an interrupt of its C extension's start into one), or was raised inside JAX's
garbage-collector callback, where Python drops it, and the search ran to the end. The
``interrupts`` tests show the two ways an interrupt is lost (a gc callback, a weakref
callback) in a small script; the search tests send the signal to a real ``optevo search``.
"""

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from optevo.search import cli
from optevo.search.cli import common, main

ROOT = Path(__file__).resolve().parents[1]
BOUND_S = 60  # from the signal to the exit; a lost interrupt runs to the time limit (300 s)


def _as_from_a_shell():
    """A child's SIGINT as a shell gives it (default disposition, not blocked), whatever the
    test process inherited or was left with: a child inherits an ignored SIGINT, and Python
    then starts with SIGINT ignored (seen once in the full suite under xdist)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _config(tmp_path, workers: int) -> Path:
    """configs/quick.yaml made small, with a budget no test waits for."""
    d = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())
    d["task"].update(steps=60, seeds=2, options={"hidden": 8, "batch_size": 16})
    d["search"].update(population=12, tournament=4, max_evals=100000, time_limit=300,
                       max_length=16)
    d["workers"].update(count=workers, batch=2)
    d["holdout"].update(top_k=1, seeds=2, baselines=[])
    d["checkpoint"]["every_seconds"] = 1.0
    d["progress"]["enabled"] = False
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _interrupt_search(tmp_path, workers: int, delay: float, after: str = ""):
    """Start ``optevo search``, send SIGINT ``delay`` seconds after the start (or after the
    run directory's file ``after`` appears), and check what the issue promises."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "optevo.search.cli", "search", str(_config(tmp_path, workers)),
         "--run-dir", str(run), "--no-holdout"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_from_a_shell)
    try:
        if after:
            t0 = time.time()
            while not (run / after).exists() and proc.poll() is None \
                    and time.time() - t0 < 240:
                time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        sent = time.time()
        out, err = proc.communicate(timeout=BOUND_S)
        took = time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    case = f"{workers} workers, SIGINT {delay} s after {after or 'the start'}"
    assert proc.returncode == cli.EXIT_INTERRUPTED == common.EXIT_INTERRUPTED, (case, out, err)
    assert "Traceback" not in err and "Exception ignored" not in err, (case, err)
    assert took < BOUND_S, case
    if (run / "config.yaml").exists():
        assert f"continue with: optevo search --resume {run}" in out, (case, out, err)
        before = signal.getsignal(signal.SIGINT), sys.unraisablehook
        assert main(["search", "--resume", str(run), "--check"]) == 0, case
        assert (signal.getsignal(signal.SIGINT), sys.unraisablehook) == before  # put back
    else:
        assert "optevo: interrupted" in err, (case, err)
    return run


# --- interrupts lost in callbacks: a small script under signals.interrupts -----------------

LOST_IN = {
    # JAX's _xla_gc_callback runs on every collection: a KeyboardInterrupt raised in a gc
    # callback is printed as "Exception ignored" and dropped
    "gc callback": """
        def cb(phase, info):
            if phase == "start":
                signal.raise_signal(signal.SIGINT)
        gc.callbacks.append(cb)
        gc.collect()
        gc.callbacks.remove(cb)
    """,
    # a callback the handler does not recognise: the exception reaches sys.unraisablehook
    "weakref callback": """
        class A:
            pass
        a = A()
        r = weakref.ref(a, lambda _: signal.raise_signal(signal.SIGINT))
        del a
    """,
}


@pytest.mark.parametrize("where", sorted(LOST_IN))
def test_an_interrupt_raised_in_a_callback_is_delivered_after_it(where):
    script = "import gc, signal, sys, time, weakref\n" \
             "from optevo.search.core.signals import interrupts\n" \
             "t0 = time.time()\n" \
             "try:\n" \
             "    with interrupts():\n" \
             + textwrap.indent(textwrap.dedent(LOST_IN[where]), " " * 8) + \
             "        while time.time() - t0 < 20:\n" \
             "            time.sleep(0.01)\n" \
             "    print('not interrupted')\n" \
             "except KeyboardInterrupt:\n" \
             "    print('interrupted after', round(time.time() - t0, 2), 's')\n" \
             "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler," \
             " sys.unraisablehook is sys.__unraisablehook__)\n"
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60, preexec_fn=_as_from_a_shell)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("interrupted after"), (r.stdout, r.stderr)
    assert float(lines[0].split()[2]) < 5
    assert lines[1] == "True True"  # the handler and the hook are put back
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr


# --- a real search, interrupted -----------------------------------------------------------

def test_sigint_while_jax_loads_is_honoured(tmp_path):
    _interrupt_search(tmp_path, workers=0, delay=0.5)


def test_sigint_as_the_run_directory_appears_prints_the_continue_line(tmp_path):
    run = _interrupt_search(tmp_path, workers=0, delay=0.1, after="config.yaml")
    assert (run / "config.yaml").exists()


_rng = random.Random(19)
MOMENTS = ([(0, d, "") for d in sorted(_rng.sample([0.2, 0.5, 1, 2, 4], 3))]
           + [(0, round(_rng.uniform(0, 3), 2), "config.yaml"),
              (0, round(_rng.uniform(0, 1), 2), "checkpoint.json")]  # in the loop
           + [(2, d, "") for d in sorted(_rng.sample([0.2, 0.5, 1, 2, 4], 2))]
           + [(2, round(_rng.uniform(0, 4), 2), "config.yaml") for _ in range(2)])


@pytest.mark.slow  # 5 to 20 s a case on 2 busy cores
@pytest.mark.parametrize("workers, delay, after", MOMENTS)
def test_sigint_at_random_moments(tmp_path, workers, delay, after):
    _interrupt_search(tmp_path, workers, delay, after)  # --resume --check included
