"""What travels to a worker and back: :class:`Job` and :class:`Result`, named by one id
scheme, :class:`JobId`; and the names every report shares (fresh seeds, baselines).

Every use of a worker pool (a search's children and the rest of a child past its hurdle,
the tuning of a program or baseline, the held-out re-check, the funnel's stages) sends
:class:`Job` s and gets :class:`Result` s back. A job's id says what it is for
(``purpose``), whose it is (``subject``: a child id, a program or baseline key, a funnel
``stage/candidate``), where it sits on a tuning grid (``lr``, ``wd``: grid indices of
``optevo.proxy_tasks.tuning``) and on which group of seeds (``seeds``). Workers only echo
it back. Its text form, ``purpose:subject@lr,wd/seeds``, is what logs and errors print.

A result holds per-seed final validation losses (``inf`` where a seed diverged) and
divergence flags; for a suite of tasks, :attr:`Result.tasks` holds each task's part and the
top-level lists are their concatenation (``Result.parts`` is the one way to read them).

Seeds: fitness and tuning seeds are ``0..K-1``; fresh ones come from
``optevo.proxy_tasks.seeds.fresh_seeds`` (the one definition of every seed base).
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple, Union

CHILD, REST, TUNE, HOLDOUT, FUNNEL = "child", "rest", "tune", "holdout", "funnel"
BASELINE_PREFIX = "optax_"  # a baseline's name: optax_adamw, optax_lion, optax_hyper_adam


def baseline_name(kind: str) -> str:
    """The name of an optax baseline of ``kind`` in every table (held-out and funnel)."""
    return BASELINE_PREFIX + kind


def is_baseline_name(name) -> bool:
    return isinstance(name, str) and name.startswith(BASELINE_PREFIX)


@dataclasses.dataclass(frozen=True)
class JobId:
    """The one id scheme of pool jobs (see the module docstring)."""

    purpose: str
    subject: Union[int, str]
    lr: Optional[int] = None
    wd: Optional[int] = None
    seeds: str = ""

    def __str__(self) -> str:
        grid = "" if self.lr is None and self.wd is None else \
            f"@{'' if self.lr is None else self.lr},{'' if self.wd is None else self.wd}"
        return f"{self.purpose}:{self.subject}{grid}" + (f"/{self.seeds}" if self.seeds else "")

    @classmethod
    def child(cls, ident: int, rest: bool = False) -> "JobId":
        return cls(REST if rest else CHILD, ident)


Seeds = Optional[Sequence]  # None: the pool's fitness seeds; a list; or one list per task
Scales = Union[None, float, Sequence[float]]  # lr multiplier: one, or one per task


@dataclasses.dataclass(frozen=True)
class Job:
    """Train ``text`` (a program, or an optax baseline's spec line) on ``seeds`` with its lr
    input multiplied by ``lr_scales``."""

    id: JobId
    text: str
    seeds: Seeds = None
    lr_scales: Scales = None
    grid: Tuple[float, ...] = ()  # also multiply lr by each of these: every seed at every
    # point, in one engine call; the result's seeds are grid-major (``Result.grid_point``)


@dataclasses.dataclass
class Result:
    """A job's outcome, as a worker returns it."""

    id: JobId
    losses: List[float]
    diverged: List[bool]
    seeds: list
    seconds: float = 0.0
    worker: str = "local"
    pid: int = dataclasses.field(default_factory=os.getpid)
    tasks: Optional[List["Result"]] = None  # a suite: one part per task

    @property
    def parts(self) -> List["Result"]:
        """Each task's part (a one-task result is its own only part)."""
        return self.tasks or [self]

    @classmethod
    def of_parts(cls, like: "Result", parts: List["Result"], **changes) -> "Result":
        """``like`` (id, worker, ...) holding ``parts``: one task's at the top; a suite's
        under ``tasks``, their seeds concatenated at the top."""
        top = dict(losses=parts[0].losses, diverged=parts[0].diverged, seeds=parts[0].seeds,
                   tasks=None)
        if len(parts) > 1:
            top = dict(losses=[x for p in parts for x in p.losses],
                       diverged=[x for p in parts for x in p.diverged],
                       seeds=[p.seeds for p in parts], tasks=list(parts))
        return dataclasses.replace(like, **{**top, **changes})

    def first_seeds(self, n: int) -> "Result":
        """Each task's part cut to its first ``n`` seeds (the hurdle figure of a full run)."""
        return Result.of_parts(self, [dataclasses.replace(
            p, losses=p.losses[:n], diverged=p.diverged[:n], seeds=p.seeds[:n], tasks=None)
            for p in self.parts])

    def grid_point(self, i: int, n: int) -> "Result":
        """The part of a grid job's result (:attr:`Job.grid` of ``n`` points) trained at
        point ``i``: each task's ``i``-th block of its seeds."""
        def cut(p):
            k = len(p.losses) // n
            return dataclasses.replace(p, losses=p.losses[i * k:(i + 1) * k], tasks=None,
                                       diverged=p.diverged[i * k:(i + 1) * k],
                                       seeds=p.seeds[i * k:(i + 1) * k])
        return Result.of_parts(self, [cut(p) for p in self.parts])

    def joined(self, rest: "Result") -> "Result":
        """This result and the ``rest`` of the same program as one result over all its
        seeds, in order (a child trained past its hurdle)."""
        return Result.of_parts(self, [dataclasses.replace(
            a, losses=a.losses + b.losses, diverged=a.diverged + b.diverged,
            seeds=list(a.seeds) + list(b.seeds), tasks=None)
            for a, b in zip(self.parts, rest.parts)], seconds=self.seconds + rest.seconds)
