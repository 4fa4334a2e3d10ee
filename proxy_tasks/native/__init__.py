"""A native CPU step for elementwise programs: the fast engine's floor (#21), opt-in.

The interpreter (``optevo.dsl.interpreter``) runs one ``lax.switch`` per statement over whole
vectors. Each statement reads its operands from memory and writes its result to the branch's
output buffer, and XLA then copies that into the register bank. A hand-written step reads
``w, g, m, v`` once and writes ``m, v`` and the update once. ``tiled_step.cc`` is an XLA FFI
custom call that runs the same encoded program (the interpreter's ``Code`` arrays, an
argument: still no compile per program) tile by tile over the parameters, so that a
statement's operands and result stay in the L1 cache.

Invariants:

* it runs a program only if every statement is one of its ops (:data:`OPS`: IEEE
  arithmetic, with ``a * b + c`` fused into one FMA as XLA's CPU code fuses it; bit for bit
  equal to the interpreter on the 53 programs ``scripts/bench/native_floor.py`` checks) and
  no statement reduces over the parameters; the engine runs any other program in the
  interpreter;
* the same losses and divergence flags as the interpreter with its finite check
  (``tests/test_native.py``): a seed diverges when one of its statements computed a value
  that is not finite or read an input (``w``, ``g``) that is not;
* built once per machine, compiler flags and jaxlib: the system's C++ compiler (``CXX``,
  else ``c++``) writes a shared library into ``OPTEVO_NATIVE_CACHE`` (default
  ``~/.cache/optevo/native``), named by a hash of all of these; written to a temporary name
  and renamed, so processes building it at once never load half a file.

``OPTEVO_NATIVE=on`` turns it on (a one-line error, exit 2, when it cannot be built or
registered); unset or ``off``, the engine uses the interpreter alone. Measured
(``scripts/bench/native_floor.py``, BENCHMARKS.md "Evaluation engine"): the AdamW start at
1.17-1.19x hand-written optax as a search's worker runs it, where the interpreter takes
1.36-1.38x; on a search's own children, 1-7% more programs per second. So it is opt-in: it
adds one compile per length bucket in every process, and needs a C++ compiler.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import jax
import jaxlib
import numpy as np

from optevo.dsl.errors import OptevoError

from ..switches import env_switch

ENV = "OPTEVO_NATIVE"
SOURCE = Path(__file__).with_name("tiled_step.cc")
TARGET = "optevo_tiled_step"
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-std=c++17",
         "-shared", "-fPIC")
# the opcodes of tiled_step.cc; "interp" with a constant weight is INTERP_C
OPS = {"nop": 0, "mov": 1, "add": 2, "sub": 3, "mul": 4, "div": 5, "sqrt": 6, "square": 7,
       "abs": 8, "negative": 9, "sign": 10, "interp": 11}
INTERP_C = 12
UNSUPPORTED = 1000


class NativeError(OptevoError):
    """``OPTEVO_NATIVE`` set to a bad value, or on where the step cannot be built."""


def wanted() -> bool:
    """``OPTEVO_NATIVE``: on, or off/unset."""
    return bool(env_switch(ENV, "off", NativeError))


_LOADED: list = []  # the library, once registered in this process


def _machine() -> str:
    """What ``-march=native`` depends on: the architecture and the CPU's feature flags."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    except OSError:
        flags = platform.processor()
    return platform.machine() + flags


def library_path(cache: Optional[str] = None) -> Path:
    """Where the built library lives: named by the source, compiler, flags, jaxlib and CPU."""
    cache = cache or os.environ.get("OPTEVO_NATIVE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "optevo", "native")
    key = hashlib.sha256("\0".join([SOURCE.read_text(), os.environ.get("CXX", "c++"),
                                    *FLAGS, jaxlib.__version__, _machine()]).encode())
    return Path(cache) / f"tiled_step-{key.hexdigest()[:16]}.so"


def build(path: Path) -> None:
    """Compile the step into ``path`` (atomically: a temporary name, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".so.tmp")
    os.close(fd)
    cmd = [os.environ.get("CXX", "c++"), *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE),
           "-o", tmp]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise NativeError(f"{ENV}=on: building {SOURCE.name} failed ({cmd[0]}: {last})")
        os.replace(tmp, path)
    except FileNotFoundError:
        raise NativeError(f"{ENV}=on: no C++ compiler {cmd[0]!r} (set CXX, or unset {ENV})") \
            from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load() -> None:
    """Build the step if this machine has not yet, and register it with JAX (once)."""
    if _LOADED:
        return
    if jax.default_backend() != "cpu":
        raise NativeError(f"{ENV}=on: the native step runs on the CPU only, and JAX runs on "
                          f"{jax.default_backend()}")
    path = library_path()
    if not path.exists():
        build(path)
    try:
        lib = ctypes.cdll.LoadLibrary(str(path))
    except OSError as e:  # a damaged file: remove it, and the next run builds it again
        path.unlink(missing_ok=True)
        raise NativeError(f"{ENV}=on: cannot load {path} ({e}); it was removed, so the next "
                          f"run builds it again") from None
    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.TiledStep), platform="cpu")
    _LOADED.append(lib)


def opmap(branch_keys: Sequence[tuple]) -> np.ndarray:
    """The step's opcode for each of the interpreter's switch branches: >= 0 a tensor
    statement, ``-(code + 1)`` a scalar one, :data:`UNSUPPORTED` any other."""
    out = []
    for key in branch_keys:
        if key in (("nop",), ("mov",)):
            out.append(OPS[key[0]])
        elif key[0] == "interp" and key[1] in ("TC", "SC"):
            out.append(INTERP_C if key[1] == "TC" else -(INTERP_C + 1))
        elif key[0] in OPS and len(key) == 2 and key[1] in ("T", "S"):
            out.append(OPS[key[0]] if key[1] == "T" else -(OPS[key[0]] + 1))
        else:  # another op, or a reduction (its key names the operands' kinds)
            out.append(UNSUPPORTED)
    return np.asarray(out, np.int32)


def runs(code, ops: np.ndarray) -> bool:
    """Can the step run this encoded program (every row it uses one of its ops)?"""
    return bool(np.all(ops[code.rows[:int(code.n), 0]] != UNSUPPORTED))


def step(code, ops, regs, w, g, lr):
    """One optimizer step, as ``Interpreter.step``: ``(regs, update)``; the banks are
    updated in place (``m`` and ``v`` stay in tensor slots 2 and 3)."""
    T, S = regs
    shapes = (jax.ShapeDtypeStruct(T.shape, T.dtype), jax.ShapeDtypeStruct(S.shape, S.dtype),
              jax.ShapeDtypeStruct(w.shape, w.dtype))
    T, S, u = jax.ffi.ffi_call(TARGET, shapes, input_output_aliases={7: 0, 8: 1})(
        code.rows, ops, code.n.reshape(1), code.out.reshape(1), w, g, lr, T, S)
    return (T, S), u
