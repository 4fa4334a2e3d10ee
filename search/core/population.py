"""Regularized evolution's population and the equivalence cache (pure data, JSON-able).

Regularized evolution (Real et al. 2019, as used by Chen et al. 2023): sample ``T`` members
uniformly, the one with the lowest loss is the parent; a child joins and the OLDEST member
leaves. A member whose loss is not finite never wins a tournament; a population without one
that has a finite loss has no parent to give (:class:`NoFiniteMember`).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Deque, Dict, List, Optional

import numpy as np

from optevo.dsl.errors import OptevoError


class NoFiniteMember(OptevoError):
    """No member of the population has a finite fitness: there is no parent to draw."""


@dataclasses.dataclass
class Member:
    """A program of the search: drawn by mutation (a child, not yet scored: ``loss`` is
    ``inf``), then scored, logged and in the population."""

    id: int
    parent: Optional[int]
    mutation: Optional[str]
    hash: str
    program: str  # canonical text
    loss: float = math.inf  # mean over fitness seeds; inf if diverged (or not yet scored)
    normalized: float = math.inf
    hurdle: Optional[float] = None  # its fitness on the hurdle seeds (search.hurdle_seeds)
    lr_mult: float = 1.0  # its lr multiplier (search.lr_grid): inherited, then its best point

    def scored(self, entry: "CacheEntry") -> "Member":
        """This child with the fitness of ``entry`` (its own, or an equivalent program's)."""
        return dataclasses.replace(self, loss=entry.loss, normalized=entry.normalized,
                                   hurdle=entry.hurdle, lr_mult=entry.lr_mult)

    def to_json(self) -> Dict:
        d = dataclasses.asdict(self)
        d["loss"] = _enc(self.loss)
        d["normalized"] = _enc(self.normalized)
        if self.lr_mult == 1.0:
            del d["lr_mult"]
        if self.hurdle is None:
            del d["hurdle"]
        else:
            d["hurdle"] = _enc(self.hurdle)
        return d

    @classmethod
    def from_json(cls, d: Dict) -> "Member":
        d = dict(d)
        d["loss"] = _dec(d["loss"])
        d["normalized"] = _dec(d["normalized"])
        if d.get("hurdle", 0) is None:
            d["hurdle"] = math.inf
        return cls(**d)


def _enc(x: float):
    return x if math.isfinite(x) else None


def _dec(x) -> float:
    return math.inf if x is None else float(x)


class Population:
    """Members in age order (oldest first), at most ``size``."""

    def __init__(self, size: int, members: Optional[List[Member]] = None):
        self.size = size
        self.members: Deque[Member] = collections.deque(members or [], maxlen=size)

    def __len__(self):
        return len(self.members)

    def add(self, member: Member) -> Optional[Member]:
        """Add a child; returns the oldest member it displaced, if any."""
        old = self.members[0] if len(self.members) == self.size else None
        self.members.append(member)  # deque(maxlen) drops the oldest
        return old

    def tournament(self, rng: np.random.Generator, k: int) -> Member:
        """The best of ``k`` members sampled uniformly without replacement, among those with
        a finite loss; if the sample holds none, the best finite member of the population."""
        n = len(self.members)
        idx = rng.choice(n, size=min(k, n), replace=False)
        sample = [self.members[int(i)] for i in idx if math.isfinite(self.members[int(i)].loss)]
        if not sample:
            sample = [m for m in self.members if math.isfinite(m.loss)]
        if not sample:
            raise NoFiniteMember("no member of the population has a finite fitness")
        return min(sample, key=lambda m: m.loss)

    def best(self) -> Member:
        return min(self.members, key=lambda m: m.loss)

    def hurdle_threshold(self, quantile: float) -> float:
        """The ``quantile`` of the members' finite hurdle figures (inf if there are none):
        a child whose hurdle figure is worse is not trained further."""
        xs = [m.hurdle for m in self.members if m.hurdle is not None and math.isfinite(m.hurdle)]
        return float(np.quantile(xs, quantile)) if xs else math.inf

    def median_loss(self) -> float:
        return float(np.median([m.loss for m in self.members])) if self.members else math.nan

    def to_json(self) -> List[Dict]:
        return [m.to_json() for m in self.members]


@dataclasses.dataclass
class CacheEntry:
    loss: float
    normalized: float
    stderr: float
    diverged: bool
    id: int  # the child that was trained for this hash
    hurdle: Optional[float] = None  # the hurdle figure, where there was a hurdle
    stopped: bool = False  # stopped at the hurdle: loss is the hurdle figure
    lr_mult: float = 1.0  # the multiplier of its best lr grid point (search.lr_grid)

    def to_json(self) -> List:
        out = [_enc(self.loss), _enc(self.normalized), _enc(self.stderr), self.diverged,
               self.id]
        return out if self.hurdle is None else out + [_enc(self.hurdle), self.stopped]

    @classmethod
    def from_json(cls, v, version: int = 2) -> "CacheEntry":
        if version == 1:  # held a never-read count of the children sharing the hash
            v = list(v[:5]) + list(v[6:])
        e = cls(_dec(v[0]), _dec(v[1]), _dec(v[2]), bool(v[3]), int(v[4]))
        if len(v) > 5:
            e.hurdle, e.stopped = _dec(v[5]), bool(v[6])
        return e


class FitnessCache:
    """hash -> fitness of the one child trained for it. A later child with a known hash
    takes the cached fitness and is never trained again (paper: 89.1% hit rate); so does a
    child equivalent to one in flight (it waits for that result). ``get`` only looks;
    :meth:`count` counts each child drawn once, as a hit or a miss."""

    def __init__(self):
        self.entries: Dict[str, CacheEntry] = {}
        self.hits = 0
        self.misses = 0
        self.by_fingerprint: Dict[str, str] = {}  # fingerprint -> hash trained for it
        self.fingerprint_hits = 0

    def get(self, h: str) -> Optional[CacheEntry]:
        return self.entries.get(h)

    def get_by_fingerprint(self, fingerprint: str) -> Optional[CacheEntry]:
        """The entry of an earlier program with this functional fingerprint, or None."""
        h = self.by_fingerprint.get(fingerprint)
        return None if h is None else self.entries[h]

    def count(self, hit, by_fingerprint=False):
        """Count one child drawn: a hit (cached, or sharing a result in flight; anything
        true) or a miss; ``by_fingerprint``: the hit came by functional fingerprint."""
        if hit:
            self.hits += 1
            self.fingerprint_hits += bool(by_fingerprint)
        else:
            self.misses += 1

    def put(self, h: str, entry: CacheEntry, fingerprint: Optional[str] = None):
        self.entries[h] = entry
        if fingerprint is not None:
            self.by_fingerprint.setdefault(fingerprint, h)

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0

    def to_json(self) -> Dict:
        d = {"hits": self.hits, "misses": self.misses,
             "entries": {h: e.to_json() for h, e in self.entries.items()}}
        mults = {h: e.lr_mult for h, e in self.entries.items() if e.lr_mult != 1.0}
        if mults:  # only a search with an lr grid has any
            d["lr_mults"] = mults
        if self.by_fingerprint:
            d.update(fingerprints=self.by_fingerprint, fingerprint_hits=self.fingerprint_hits)
        return d

    @classmethod
    def from_json(cls, d: Dict, version: int = 2) -> "FitnessCache":
        c = cls()
        c.hits, c.misses = int(d["hits"]), int(d["misses"])
        c.entries = {h: CacheEntry.from_json(v, version) for h, v in d["entries"].items()}
        for h, m in d.get("lr_mults", {}).items():
            c.entries[h].lr_mult = float(m)
        c.by_fingerprint = dict(d.get("fingerprints", {}))
        c.fingerprint_hits = int(d.get("fingerprint_hits", 0))
        return c
