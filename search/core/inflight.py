"""Children in flight: trained programs whose result has not come back, and the children
waiting on them.

Invariants: at most one training per hash (and, with ``search.fingerprint``, per functional
fingerprint) is in flight; every child drawn while an equivalent program trains waits on it
and takes its result; a child trained past its hurdle keeps its first result here until the
rest of its seeds come back. Nothing here is checkpointed: a killed driver loses exactly
these children, and a resumed search draws them again.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .jobs import Result
from .population import Member


class InFlight:
    def __init__(self):
        self._waiting: Dict[str, List[Member]] = {}  # hash in training -> its children
        self._hash_of: Dict[int, str] = {}  # id of the child in training -> its hash
        self._by_fingerprint: Dict[str, str] = {}  # fingerprint in training -> its hash
        self._fingerprint_of: Dict[str, str] = {}
        self.cleared: Dict[int, Result] = {}  # child id -> its hurdle result, rest in flight

    def __len__(self) -> int:
        """Children in training (not those waiting on them)."""
        return len(self._hash_of)

    def shared(self, h: str, fingerprint: Optional[str]) -> Optional[str]:
        """The hash in training that a child with hash ``h`` (and ``fingerprint``) can wait
        on, or None."""
        if h in self._waiting:
            return h
        return self._by_fingerprint.get(fingerprint) if fingerprint is not None else None

    def wait(self, h: str, child: Member):
        self._waiting[h].append(child)

    def start(self, child: Member, fingerprint: Optional[str]):
        """``child`` goes to training."""
        self._waiting[child.hash] = [child]
        self._hash_of[child.id] = child.hash
        if fingerprint is not None:
            self._by_fingerprint[fingerprint] = child.hash
            self._fingerprint_of[child.hash] = fingerprint

    def program_of(self, ident: int) -> str:
        return self._waiting[self._hash_of[ident]][0].program

    def finish(self, ident: int) -> Tuple[List[Member], Optional[str]]:
        """The trained child ``ident`` came back: its children (it first) and fingerprint."""
        h = self._hash_of.pop(ident)
        fingerprint = self._fingerprint_of.pop(h, None)
        self._by_fingerprint.pop(fingerprint, None)
        return self._waiting.pop(h), fingerprint
