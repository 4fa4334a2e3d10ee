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
    island: int = 0  # its island (search.islands): its parent's

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
        if self.island == 0:
            del d["island"]
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
    """Members in age order (oldest first), at most ``size``, on ``islands`` islands of
    ``size // islands`` each (``search.islands``; one by default: the paper's single
    population). A member lives on its ``island``; a tournament is held on one island; a
    child joins its parent's island and displaces that island's oldest. :meth:`migrate`
    sends each island's best (or a random member) to the next island in a ring (Cantu-Paz
    1998; PySR and OpenEvolve run islands so): a copy joins there as its newest member."""

    def __init__(self, size: int, members: Optional[List[Member]] = None, islands: int = 1):
        self.size, self.islands = size, max(1, int(islands))
        each = max(1, size // self.islands)
        self._isl: List[Deque[Member]] = [collections.deque(maxlen=each)
                                          for _ in range(self.islands)]
        for m in members or []:
            self._isl[m.island % self.islands].append(m)

    @classmethod
    def filled(cls, size: int, member: Member, islands: int = 1) -> "Population":
        """Every island full of copies of ``member`` (a new run; a restart)."""
        each = max(1, size // max(1, islands))
        return cls(size, [dataclasses.replace(member, island=i) for i in range(islands)
                          for _ in range(each)], islands)

    @property
    def members(self) -> List[Member]:
        return [m for isl in self._isl for m in isl]

    def __len__(self):
        return sum(len(isl) for isl in self._isl)

    def add(self, member: Member) -> Optional[Member]:
        """Add a child to its island; returns the oldest member it displaced, if any."""
        isl = self._isl[member.island % self.islands]
        old = isl[0] if len(isl) == isl.maxlen else None
        isl.append(member)  # deque(maxlen) drops the oldest
        return old

    def tournament(self, rng: np.random.Generator, k: int, island: int = 0) -> Member:
        """The best of ``k`` members of ``island`` sampled uniformly without replacement,
        among those with a finite loss; if the sample holds none, the best finite member of
        the island (of the whole population if the island has none)."""
        isl = self._isl[island % self.islands]
        n = len(isl)
        idx = rng.choice(n, size=min(k, n), replace=False)
        sample = [isl[int(i)] for i in idx if math.isfinite(isl[int(i)].loss)]
        if not sample:
            sample = [m for m in isl if math.isfinite(m.loss)] or \
                [m for m in self.members if math.isfinite(m.loss)]
        if not sample:
            raise NoFiniteMember("no member of the population has a finite fitness")
        return min(sample, key=lambda m: m.loss)

    def migrate(self, rng: np.random.Generator, kind: str = "best") -> int:
        """Each island's emigrant (its best, or a random member: ``kind``) joins the next
        island as a copy; returns how many moved (0 with one island)."""
        if self.islands < 2:
            return 0
        out = []
        for isl in self._isl:
            finite = [m for m in isl if math.isfinite(m.loss)]
            if not finite:
                out.append(None)
                continue
            out.append(min(finite, key=lambda m: m.loss) if kind == "best"
                       else finite[int(rng.integers(len(finite)))])
        for i, m in enumerate(out):
            if m is not None:
                self.add(dataclasses.replace(m, island=(i + 1) % self.islands))
        return sum(m is not None for m in out)

    def best(self) -> Member:
        return min(self.members, key=lambda m: m.loss)

    def hurdle_threshold(self, quantile: float) -> float:
        """The ``quantile`` of the members' finite hurdle figures (inf if there are none):
        a child whose hurdle figure is worse is not trained further."""
        xs = [m.hurdle for m in self.members if m.hurdle is not None and math.isfinite(m.hurdle)]
        return float(np.quantile(xs, quantile)) if xs else math.inf

    def median_loss(self) -> float:
        ms = self.members
        return float(np.median([m.loss for m in ms])) if ms else math.nan

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
