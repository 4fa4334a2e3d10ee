"""A search on a Ray cluster of several nodes, built on one machine as Ray's own tests do
(``ray.cluster_utils.Cluster``; health checks shortened so that a lost node is noticed in
seconds): the driver on the head (no CPU for workers), two worker nodes of 1 CPU each.

* ``--address`` places the workers on every worker node.
* A worker node removed in the middle of a search, gracefully or as a crash, then a new
  node added: the search (``optevo search --address``, its own process, as a user runs it)
  finishes with every child logged once, the lost worker's batches evaluated again, and its
  replacement on the new node. (A cluster can only be changed from the test's main thread,
  so the driver runs in a subprocess, which is also how a user's driver meets a lost node.)

Slow (a cluster start is tens of seconds on 2 cores): ``pytest -m slow tests/test_cluster.py``.
"""

import json
import subprocess
import sys
import time

import pytest
import yaml

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from optevo.search.core.config import config_from_dict  # noqa: E402
from optevo.search.core.jobs import Job, JobId  # noqa: E402
from optevo.search.core.workers import RayPool, eval_spec, wait_all  # noqa: E402

pytestmark = pytest.mark.slow

HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
          "health_check_failure_threshold": 3}


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": HEALTH})
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    try:
        yield c, nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _cfg(address, max_evals=40):
    return config_from_dict({
        "seed": 6, "task": {"name": "quadratic", "steps": 20, "seeds": 2},
        "search": {"population": 8, "tournament": 3, "max_evals": max_evals},
        "workers": {"count": 2, "batch": 2, "address": address, "pin_cores": False},
        "holdout": {"top_k": 1, "seeds": 2}, "checkpoint": {"every_seconds": 1.0},
        "progress": {"enabled": False}})


def test_workers_are_placed_on_every_worker_node(cluster):
    c, nodes = cluster
    pool = RayPool(eval_spec(_cfg(c.address)), 2, c.address, pin=False)
    try:
        assert set(pool.nodes) == {n.node_id for n in nodes}
        pool.submit([Job(JobId.child(1), "def train(w, g, m, v, lr):\n  update = g * lr\n"
                         "  return update, m, v\n", None, None)])
        assert len(wait_all(pool, timeout=120)) == 1
    finally:
        pool.shutdown()


def test_workers_share_the_gpus_of_a_cluster_that_has_them():
    """Ray hides the GPUs from an actor that asks for none, so on a cluster with GPUs each
    worker asks for its share (``workers.gpu_share``). Two worker nodes declaring one GPU
    each (Ray takes the count as given; no GPU is needed): each worker holds one, on its
    own node, and still trains (here on the CPU)."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": HEALTH})
    nodes = [c.add_node(num_cpus=1, num_gpus=1) for _ in range(2)]
    c.wait_for_nodes()
    pool = None
    try:
        pool = RayPool(eval_spec(_cfg(c.address)), 2, c.address, pin=False)
        assert pool.gpu_share == 1.0
        ready = pool.wait_ready()
        assert all(len(r["gpus"]) == 1 for r in ready)
        assert {r["node"] for r in ready} == {n.node_id for n in nodes}
        pool.submit([Job(JobId.child(1), "def train(w, g, m, v, lr):\n  update = g * lr\n"
                         "  return update, m, v\n", None, None)])
        assert len(wait_all(pool, timeout=120)) == 1
    finally:
        if pool is not None:
            pool.shutdown()
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _count(path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "crash"])
def test_a_search_survives_losing_a_worker_node(cluster, tmp_path, graceful):
    c, nodes = cluster
    cfg = _cfg(c.address, max_evals=None).model_dump(mode="json", exclude_none=True)
    # a time limit, not a count: time for the replacement to start and take work
    cfg["search"].update(time_limit=75, max_evals=10**6)
    cfg["task"]["steps"] = 400
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out, log = tmp_path / "run", tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "optevo.search.cli", "search",
                                 str(tmp_path / "c.yaml"), "--address", c.address,
                                 "--run-dir", str(out), "--no-holdout"], stdout=f, stderr=f)
    try:
        t0 = time.time()
        while _count(out / "evaluations.jsonl") < 20 and proc.poll() is None:
            assert time.time() - t0 < 300, "the search logged no 20 children in 300 s"
            time.sleep(0.2)
        assert proc.poll() is None, "the search ended before the node was lost"
        c.remove_node(nodes[0], allow_graceful=graceful)
        n_lost = _count(out / "evaluations.jsonl")
        time.sleep(8)  # the search goes on with one worker meanwhile
        n_joined = _count(out / "evaluations.jsonl")
        new = c.add_node(num_cpus=1)
        assert proc.wait(timeout=400) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert n_joined > n_lost  # children were logged while the node was missing
    recs = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]
    assert len({r["id"] for r in recs}) == len(recs)  # none duplicated
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trained"] == sum(not r["cached"] for r in recs)  # none lost
    assert summary["worker_restarts"] >= 1
    assert new.node_id in summary["worker_nodes"]  # the lost worker's replacement
    assert nodes[0].node_id not in summary["worker_nodes"]
