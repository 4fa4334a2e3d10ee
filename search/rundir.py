"""A run directory: resolved config, append-only evaluation log, atomic checkpoints.

    RUN_DIR/config.yaml          the resolved config the run used
    RUN_DIR/evaluations.jsonl    one line per child that joined the population (append-only);
                                 ``cached: true`` marks children that took a cached fitness
    RUN_DIR/checkpoint.json      population, RNG state, cache, counters (atomic replace)
    RUN_DIR/holdout.jsonl        best programs re-evaluated on fresh seeds
    RUN_DIR/report.md            the final report, ranked by held-out loss

Nothing here is ever unpickled or executed: every file is JSON, YAML or program text.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional

LOG = "evaluations.jsonl"
CHECKPOINT = "checkpoint.json"
CONFIG = "config.yaml"
HOLDOUT = "holdout.jsonl"
REPORT = "report.md"


def atomic_write(path: Path, text: str):
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old or the new file,
    never a torn one: write a temporary file beside it, fsync, rename over."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    def create(self):
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    # --- the evaluation log -----------------------------------------------------------------
    def repair_log(self) -> int:
        """Drop a torn last line (a write cut by a kill); returns the number of full lines."""
        p = self.file(LOG)
        if not p.exists():
            return 0
        data = p.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(p, "r+b") as f:
                f.truncate(end)
        return data[:end].count(b"\n")

    def open_log(self):
        self._log = open(self.file(LOG), "a", buffering=1)
        return self._log

    def append(self, record: Dict):
        """Append one record; flushed at once so a killed driver loses nothing written."""
        self._log.write(json.dumps(record, separators=(",", ":")) + "\n")

    def sync(self):
        if getattr(self, "_log", None):
            self._log.flush()
            os.fsync(self._log.fileno())

    def close(self):
        if getattr(self, "_log", None):
            self.sync()
            self._log.close()
            self._log = None

    def records(self, name: str = LOG) -> Iterator[Dict]:
        p = self.file(name)
        if not p.exists():
            return
        with open(p) as f:
            for line in f:
                if line.endswith("\n"):
                    yield json.loads(line)

    # --- checkpoints ----------------------------------------------------------------------
    def write_checkpoint(self, state: Dict):
        self.sync()  # the log is never behind the checkpoint
        atomic_write(self.file(CHECKPOINT), json.dumps(state))

    def read_checkpoint(self) -> Optional[Dict]:
        p = self.file(CHECKPOINT)
        if not p.exists():
            return None
        return json.loads(p.read_text())

    def exists(self) -> bool:
        return self.file(CHECKPOINT).exists() or self.file(LOG).exists()

    def list_records(self, name: str = LOG) -> List[Dict]:
        return list(self.records(name))
