"""Children per second of a search on a Ray cluster of 1 and of 2 worker nodes, side by side.

The cluster is built on this machine as Ray's own tests do (``ray.cluster_utils.Cluster``):
a head with no CPU for workers (the driver's node), and K worker nodes of 1 CPU each, one
search worker per node. The search is ``optevo search CONFIG --address ADDR --workers K``, as
a user runs it, for ``--seconds`` of search time, with no held-out re-check. The rate is the
steady state: children trained (cache hits not counted) logged between a quarter of the
search time and its end, over that window, so the workers' start-up and the start's
calibration are left out. On a machine of 2 cores the driver shares them with the workers,
so 2 nodes cannot give 2x.

    python scripts/bench/cluster.py                         # configs/quick.yaml, 120 s each
    python scripts/bench/cluster.py --config search --seconds 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def steady_rate(records, seconds: float) -> float:
    """Children trained per second between ``seconds / 4`` and ``seconds``."""
    t0 = seconds / 4
    n = sum(1 for r in records if not r["cached"] and t0 <= r["time"] <= seconds)
    return n / (seconds - t0)


def run(config: str, nodes: int, seconds: float, out: Path) -> dict:
    from ray.cluster_utils import Cluster
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(nodes):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
        t = time.time()
        subprocess.run([sys.executable, "-m", "optevo.search.cli", "search", config,
                        "--address", c.address, "--workers", str(nodes), "--run-dir",
                        str(out), "--no-holdout", "--time-limit", str(seconds),
                        "--max-evals", str(10**7)], check=True, stdout=subprocess.DEVNULL)
        wall = time.time() - t
    finally:
        c.shutdown()
    recs = [json.loads(x) for x in (out / "evaluations.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    return {"nodes": nodes, "rate": steady_rate(recs, seconds),
            "trained": summary["trained"], "workers_on": len(set(summary["worker_nodes"])),
            "wall": wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="quick")
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args.config, k, args.seconds, Path(tmp) / f"n{k}") for k in (1, 2)]
    print(f"optevo search {args.config} --address (ray.cluster_utils, one machine), "
          f"{args.seconds:g} s of search each; steady state from {args.seconds / 4:g} s\n")
    print("| worker nodes | workers on distinct nodes | children trained | children/s "
          "(steady) | wall s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']} | {r['workers_on']} | {r['trained']} | {r['rate']:.2f} | "
              f"{r['wall']:.0f} |")
    print(f"\n2 nodes / 1 node: {rows[1]['rate'] / rows[0]['rate']:.2f}x")


if __name__ == "__main__":
    main()
