"""Programs batched for an accelerator: many programs in one call of the fast engine.

On a CPU the fast engine runs one program per call, and each statement is one
``lax.switch`` whose index is not batched, so XLA executes only the chosen branch
(``optevo.dsl.interpreter``). On a GPU that is the wrong shape: one program of a few
thousand parameters leaves the device idle, and every statement is a branch decided on
the device. Batched, the engine vmaps the same compiled training loop over a leading axis
of programs (their encoded arrays stacked) and learning-rate scales; the switch index is
then batched, so XLA computes every branch and selects each program's own (one fused
``select``): more arithmetic, far fewer steps of control. The statement loop is unrolled
(its padding rows are no-ops writing to scratch registers), so no statement waits on a
loop condition.

Invariants:

* the same losses and divergence flags as one program per call (``tests/test_batching.py``
  holds the two equal, the diverged runs and the learning-rate grid included);
* one compile per length bucket and batch size; batches are padded (with copies of their
  last program, whose results are dropped) to a power of two of at most
  :data:`PROGRAM_BATCH`, so a bucket compiles at most 7 sizes, never per candidate.

Measured on this project's 2-core CPU (``scripts/bench/batching.py``): batching is hundreds
of times slower there (every one of the ~100 branches is computed for every statement), so
it is off on a CPU. Whether it pays on a GPU, and by how much, has not been measured yet:
no GPU was available to this project when it was written. :func:`default_batching` turns it
on wherever JAX's default backend is not the CPU; ``OPTEVO_BATCH_PROGRAMS=on|off`` overrides
that, for the comparison on a GPU (the same script).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import jax
import numpy as np

from optevo.dsl.errors import OptevoError

from .switches import env_switch

PROGRAM_BATCH = 64  # most programs in one batched call
ENV = "OPTEVO_BATCH_PROGRAMS"


class BatchingError(OptevoError):
    """``OPTEVO_BATCH_PROGRAMS`` set to something other than on or off."""


def default_batching() -> bool:
    """Batch programs? ``OPTEVO_BATCH_PROGRAMS`` (on/off) if set, else on wherever JAX's
    default backend is not the CPU (a GPU or TPU)."""
    on = env_switch(ENV, "on where JAX runs on a GPU or TPU, off on the CPU", BatchingError)
    return jax.default_backend() != "cpu" if on is None else on


def padded_size(n: int) -> int:
    """The batch size that ``n`` programs are padded to: the next power of two."""
    return 1 << max(0, n - 1).bit_length()


def plan(buckets: Sequence[int]) -> List[Tuple[int, List[int]]]:
    """Calls for items whose length buckets are ``buckets`` (one per item): ``(bucket,
    indices)``, at most :data:`PROGRAM_BATCH` items each, every item in exactly one call."""
    by_bucket: Dict[int, List[int]] = {}
    for i, b in enumerate(buckets):
        by_bucket.setdefault(b, []).append(i)
    return [(b, idx[a:a + PROGRAM_BATCH]) for b, idx in by_bucket.items()
            for a in range(0, len(idx), PROGRAM_BATCH)]


def pad(chunk: List[int]) -> List[int]:
    """``chunk`` padded to :func:`padded_size` with copies of its last index."""
    return chunk + [chunk[-1]] * (padded_size(len(chunk)) - len(chunk))


def stack(trees: Sequence):
    """Pytrees of numpy arrays (encoded programs) stacked along a new leading axis."""
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)
