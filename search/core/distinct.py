"""Which records of a run are *distinct* programs: the walk behind ``rundir.best_distinct``.

A run's log keys every child by ``program_hash``, which is exact (equal hashes compute equal
bits, ``dsl/canon.py``) and so keeps apart programs that compute the same thing by other
means: ``interp(g, g, c)`` is ``g`` up to rounding for every weight ``c`` (so three of them
were once the same RMSprop listed, and held out, three times), and a log written before an
identity joined the hash keeps its older hash. The walk takes the best record per logged
hash, ranks them by (loss, id), and lists a record only if none of its keys was met before
(keys of records left out count too, so equivalence is transitive). Keys:

* ``("hash", h)``: the logged hash, and the program's hash as ``program_hash`` hashes now;
* ``("simplified", h)``: the hash of ``simplify_exact(program)`` (not strict: equal up to
  rounding and the safe-division epsilon, ``simplify/exact.py``);
* ``("fingerprint", f)``: the functional fingerprint (``dsl/fingerprint.py``, its default
  digits and steps: outputs of a few steps on fixed inputs, to 4 significant digits), the
  "very likely trains alike" key the search's cache can use; its measured false merges
  are 0-0.4% of its merges.

So no two records listed share a hash, a simplified hash or a fingerprint. A program that no
longer parses (an op of a plugin not loaded) keeps only its logged hash. Cost, measured on
one core of a shared 2-core machine over 400 records of a real run (10 statements each):
1.5 ms per record to simplify and hash, 1.2 ms to fingerprint, plus 1-2 s for the
fingerprint's first compiles in a process; keys are remembered per program text. The walk
is lazy: a top ``k`` list computes the keys of about ``k`` records (plus those merged away):
the top 5 of a 128,000-record run (98,000 distinct hashes) took 1.5 s, the top 200 2.7 s.
Listing *all* of them computes every key: the 2,132 distinct programs among the run's
first 3,000 records took 17 s, so a caller that stops early should walk :func:`iter_distinct` rather than ask
``best_distinct`` for everything.
"""

from __future__ import annotations

from typing import Dict, Iterable, Iterator

__all__ = ["equivalence_keys", "iter_distinct"]


def iter_distinct(records: Iterable, include_start: bool = True,
                  merge: bool = True) -> Iterator:
    """The run's distinct records (``rundir.Record``), best first, lazily: for each logged
    hash the trained record with the lowest finite loss, ranked by (loss, id), diverged ones
    and (unless ``include_start``) the start program (id 0) left out; with ``merge``, a record
    equivalent to one met before is left out (see the module docstring)."""
    best: Dict[str, object] = {}
    for r in records:
        if r.cached or r.loss is None or (r.id == 0 and not include_start):
            continue
        old = best.get(r.hash)
        if old is None or (r.loss, r.id) < (old.loss, old.id):
            best[r.hash] = r
    seen: set = set()
    for r in sorted(best.values(), key=lambda r: (r.loss, r.id)):
        keys = equivalence_keys(r.hash, r.program) if merge else ()
        fresh = seen.isdisjoint(keys)
        seen.update(keys)
        if fresh:
            yield r


_KEYS: Dict[str, tuple] = {}  # program text -> its keys (this process)


def equivalence_keys(logged_hash: str, text: str) -> tuple:
    """The keys of a record with this logged hash and program text (module docstring)."""
    keys = _KEYS.get(text)
    if keys is None:
        keys = _program_keys(text)
        if len(_KEYS) < 200_000:
            _KEYS[text] = keys
    return (("hash", logged_hash),) + keys


def _program_keys(text: str) -> tuple:
    from optevo.dsl import parse  # lazily: reading a run directory needs no JAX
    from optevo.dsl.canon import program_hash
    from optevo.dsl.errors import OptevoError
    from optevo.dsl.fingerprint import fingerprint
    from optevo.simplify import simplify_exact
    try:
        program = parse(text)
    except OptevoError:
        return ()  # an op not registered in this process: the logged hash alone
    keys = []
    for name, key in (("hash", program_hash),
                      ("simplified", lambda p: program_hash(simplify_exact(p))),
                      ("fingerprint", fingerprint)):
        try:
            keys.append((name, key(program)))
        except (OptevoError, ValueError, ArithmeticError):
            pass
    return tuple(keys)
