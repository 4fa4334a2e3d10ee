"""One writer per run directory: a second optevo process on a directory in use is refused at
once with a one-line error naming the holder; a holder killed with SIGKILL leaves no lock."""

import os
import signal
import subprocess
import sys
import time

import pytest

from optevo.search.core.config import config_from_dict, dump_config
from optevo.search.core.rundir import RunDirError, exclusive

TINY = {"task": {"name": "digits_mlp", "steps": 20, "seeds": 2,
                 "options": {"hidden": 8, "batch_size": 16}},
        "search": {"population": 4, "tournament": 2, "max_evals": 4},
        "workers": {"count": 0}, "progress": {"enabled": False}}


def test_a_second_writer_is_refused_with_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dump_config(config_from_dict(TINY), run / "config.yaml")
    with exclusive(run):
        with pytest.raises(RunDirError, match=f"in use by another optevo process \\(pid "
                                              f"{os.getpid()}\\)"):
            with exclusive(run):
                pass
        r = subprocess.run([sys.executable, "-m", "optevo.search.cli", "search", "--resume",
                            str(run)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"in use by another optevo process (pid {os.getpid()})" in r.stderr
        assert not (run / "evaluations.jsonl").exists()  # the refused process wrote nothing
    with exclusive(run):  # released when the block ends
        pass


def test_a_holder_killed_with_sigkill_leaves_no_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from optevo.search.core.rundir import exclusive\n"
         f"with exclusive({str(tmp_path)!r}):\n"
         "    print('locked', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
        with exclusive(tmp_path):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.time()
    with exclusive(tmp_path):  # the kernel dropped the dead holder's lock
        assert time.time() - t0 < 5
