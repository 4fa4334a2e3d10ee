"""Nothing half-done in silence (issue #22): a pool wait that times out raises instead of
returning the jobs that finished as if they were all; a damaged funnel summary read by
discover's report is one line naming the file and the way to write it again."""

import json

import pytest

from optevo.search.core.workers import WorkerError, wait_all
from optevo.search.discover.report import funnel_summary
from optevo.search.core.rundir import RunDirError


class _StuckPool:
    """A pool (the protocol ``wait_all`` reads) whose one job never finishes, as a worker
    that hangs: one result comes back, one job stays in flight."""

    def __init__(self):
        self.in_flight, self.sent = 2, False

    def poll(self, timeout):
        if not self.sent:
            self.sent, self.in_flight = True, 1
            return ["done"]
        return []


def test_wait_all_raises_when_jobs_are_left_in_flight():
    with pytest.raises(WorkerError, match="1 job\\(s\\) still in flight after 0.2 s; 1 "
                                          "finished"):
        wait_all(_StuckPool(), timeout=0.2)


@pytest.mark.parametrize("text", ['{"stages": [', "[]", '{"stages": [], "elapsed": 1}',
                                  '{"stages": {}, "reference": "a", "elapsed": 1}'])
def test_a_damaged_funnel_summary_is_one_line(tmp_path, text):
    (tmp_path / "summary.json").write_text(text)
    with pytest.raises(RunDirError, match="summary.json: damaged .*funnel --resume"):
        funnel_summary(tmp_path)


def test_a_whole_funnel_summary_reads(tmp_path):
    d = {"stages": [], "reference": "optax_adamw", "elapsed": 3.0}
    (tmp_path / "summary.json").write_text(json.dumps(d))
    assert funnel_summary(tmp_path) == d
