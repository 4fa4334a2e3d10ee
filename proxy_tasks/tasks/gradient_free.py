"""Programs that ignore the gradient: what a task must never reward.

A search exploits whatever a task lets it: any way to a low loss that is not optimization is
one it will find. With a fixed optimum at ``x = 1``, ``update = w - 1.0`` solved Rosenbrock
outright, and a search duly returned ``w = log10(w); update = update + w``. Every built-in
task is checked against this family (``tests/test_task_quality.py``): jump to 0, to 1, to -1,
to sign(w) (+-1), flow to a fixed point of log|w| (|w| = 1), pure weight decay, a pull
towards 1 at the learning rate. Those that read ``lr`` get their scale tuned like any
program; each must end worse than the tuned AdamW start.
"""

from __future__ import annotations

from typing import Dict

from optevo.dsl.parse import parse
from optevo.dsl.program import Program

_HEAD = "def train(w, g, m, v, lr):\n"
_BODIES = {
    "jump to 0": "  update = w * 1.0\n",
    "jump to 1": "  update = w - 1.0\n",
    "jump to -1": "  update = w + 1.0\n",
    "jump to sign(w)": "  s = sign(w)\n  update = w - s\n",
    "log10|w| flow": "  t = log10(w)\n  update = t * lr\n",
    "log|w| flow": "  t = log(w)\n  update = t * lr\n",
    "weight decay": "  update = w * lr\n",
    "pull to 1": "  t = w - 1.0\n  update = t * lr\n",
}


def programs() -> Dict[str, Program]:
    """The gradient-free family, by name."""
    return {name: parse(_HEAD + body + "  return update, m, v\n")
            for name, body in _BODIES.items()}


def reads_lr(program: Program) -> bool:
    return any("lr" in s.vars() for s in program.stmts)
