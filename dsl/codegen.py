"""Write a program out as a self-contained, readable Python module: an optax transformation.

``to_module_source(program, name="discovered")`` returns the text of a module that needs only
``jax`` and ``optax`` (it never imports optevo) and defines

* ``DiscoveredState``: a NamedTuple with the step count and **one slot per live state
  variable** (``dsl.liveness``): a program that never reads ``v`` (Lion) stores only ``m``;
* ``discovered(learning_rate=1.0) -> optax.GradientTransformation``.

Dead statements are removed first (``liveness.strip_dead``). Each remaining statement becomes
one line of ``jax.tree.map``/``jnp`` code that spells out exactly the formula of
``dsl/ops.py`` (the reference executor's semantics): safe forms inlined (``x / (y + 1e-8)``,
``sqrt(|x|)``, ...), ``interp(x, y, a) = (1.0 - a) * x + a * y`` with constants left as
Python floats so that constant arithmetic happens in double precision, ``norm`` per parameter
leaf, ``global_norm``/``dot``/``cosine_sim`` summed over the whole pytree, scalars (``lr``,
constants, reductions) closed over by the lambdas and broadcast at the end. The module's
updates equal ``dsl.execute.update_fn``'s (negated, as optax adds updates to parameters).
"""

from __future__ import annotations

import keyword
from typing import Dict, List, Optional, Sequence, Tuple

from .liveness import STATE, live_state, strip_dead
from .ops import EPS, OPS, SCALAR, TENSOR
from .program import INPUTS, Program, check, format_const

_E = "1e-8"
assert float(_E) == EPS

# Elementwise formulas, one per elementwise op of dsl/ops.py, written with the same
# functions in the same order ({0}, {1}, {2}: the arguments).
_UNARY_JNP = ("abs cos sin tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh "
              "exp exp2 expm1 square cbrt sign negative").split()
ELEMENTWISE: Dict[str, str] = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / ({1} + %s)" % _E,
    "max": "jnp.maximum({0}, {1})",
    "min": "jnp.minimum({0}, {1})",
    "power": "jnp.power({0}, {1})",
    **{name: f"jnp.{name}({{0}})" for name in _UNARY_JNP},
    "exp10": "jnp.power(10.0, {0})",
    "log": "jnp.log(jnp.abs({0}))",
    "log10": "jnp.log10(jnp.abs({0}))",
    "log2": "jnp.log2(jnp.abs({0}))",
    "log1p": "jnp.log(jnp.abs(1.0 + {0}))",
    "sqrt": "jnp.sqrt(jnp.abs({0}))",
    "cube": "{0} * {0} * {0}",
    "reciprocal": "1.0 / ({0} + %s)" % _E,
    "interp": "(1.0 - {2}) * {0} + {2} * {1}",
    "clip": "jnp.clip({0}, -jnp.abs({1}), jnp.abs({1}))",
}
CONSTANTS = {"get_pi": "jnp.float32(3.141592653589793)",
             "get_e": "jnp.float32(2.718281828459045)",
             "get_eps": "jnp.float32(%s)" % _E}
REDUCTIONS = ("norm", "global_norm", "dot", "cosine_sim", "clip_by_global_norm")
SUPPORTED = frozenset(ELEMENTWISE) | frozenset(CONSTANTS) | frozenset(REDUCTIONS)

# Names the generated update function uses itself: program variables never take them.
_RESERVED = frozenset({
    "jax", "jnp", "optax", "Any", "NamedTuple", "params", "updates", "state", "learning_rate",
    "init_fn", "update_fn", "new_updates", "new_m", "new_v", "callable", "float", "sum",
    "ValueError", "print", "len", "self",
}) | frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", ()))

_HELPERS = {
    "_total": '''def _total(x):
    """Sum of every element of a pytree: a scalar."""
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(x))
''',
    "_global_norm": '''def _global_norm(x):
    """sqrt(sum of x**2 over the whole pytree): a scalar."""
    return jnp.sqrt(_total(jax.tree.map(jnp.square, x)))
''',
}


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_") if p) or "Program"


class _Writer:
    """Turns statements into lines of code, tracking each variable's kind."""

    def __init__(self, program: Program):
        self.kinds: Dict[str, str] = {"w": TENSOR, "g": TENSOR, "m": TENSOR, "v": TENSOR,
                                      "lr": SCALAR}
        names = set(INPUTS) | {s.target for s in program.stmts}
        self.rename: Dict[str, str] = {}
        for n in sorted(names):
            if n in _RESERVED or n.startswith("_"):
                new = n.strip("_") or "x"
                while new in names or new in _RESERVED or new in self.rename.values():
                    new += "_"
                self.rename[n] = new
        self.helpers: List[str] = []
        self.lines: List[str] = []
        self.tmp = 0

    def name(self, var: str) -> str:
        return self.rename.get(var, var)

    def arg(self, a) -> Tuple[str, str]:
        """(code, kind) of a statement argument."""
        if isinstance(a, str):
            return self.name(a), self.kinds[a]
        return format_const(a), SCALAR

    def need(self, helper: str):
        for h in (("_total", "_global_norm") if helper == "_global_norm" else (helper,)):
            if h not in self.helpers:
                self.helpers.append(h)

    def fresh(self) -> str:
        self.tmp += 1
        return f"_t{self.tmp}"

    @staticmethod
    def mapped(template: str, args: Sequence[Tuple[str, str]]) -> Tuple[str, str]:
        """``template`` applied elementwise: over the tensor arguments' leaves with
        ``jax.tree.map`` (scalars are closed over), or directly when all are scalars."""
        code = template.format(*[c for c, _ in args])
        tensors = list(dict.fromkeys(c for c, k in args if k == TENSOR))
        if not tensors:
            return code, SCALAR
        if len(tensors) == 1 and template.startswith("jnp.") and \
                template == template.split("(")[0] + "({0})":
            return f"jax.tree.map({template.split('(')[0]}, {tensors[0]})", TENSOR
        params = ", ".join(tensors)
        return f"jax.tree.map(lambda {params}: {code}, {params})", TENSOR

    def global_norm(self, x: Tuple[str, str]) -> str:
        if x[1] == TENSOR:
            self.need("_global_norm")
            return f"_global_norm({x[0]})"
        return f"jnp.sqrt(jnp.square({x[0]}))"

    def dot(self, x, y) -> str:
        code, kind = self.mapped("{0} * {1}", [x, y])
        if kind == TENSOR:
            self.need("_total")
            return f"_total({code})"
        return code

    def stmt(self, s) -> List[str]:
        args = [self.arg(a) for a in s.args]
        out: List[str] = []
        if s.op in ELEMENTWISE:
            code, kind = self.mapped(ELEMENTWISE[s.op], args)
        elif s.op in CONSTANTS:
            code, kind = CONSTANTS[s.op], SCALAR
        elif s.op == "global_norm":
            code, kind = self.global_norm(args[0]), SCALAR
        elif s.op == "norm":  # per leaf: the leaf's L2 norm, broadcast over the leaf
            x, kind = args[0]
            code = (f"jax.tree.map(lambda {x}: jnp.sqrt(jnp.broadcast_to("
                    f"jnp.sum(jnp.square({x})), {x}.shape)), {x})" if kind == TENSOR
                    else f"jnp.sqrt(jnp.square({x}))")
        elif s.op == "dot":
            code, kind = self.dot(*args), SCALAR
        elif s.op == "cosine_sim":
            code, kind = (f"{self.dot(*args)} / ({self.global_norm(args[0])} * "
                          f"{self.global_norm(args[1])} + {_E})"), SCALAR
        elif s.op == "clip_by_global_norm":  # x * min(1, c / (global_norm(x) + 1e-8))
            gn = self.fresh()
            out.append(f"{gn} = {self.global_norm(args[0])}")
            code, kind = self.mapped("{0} * jnp.minimum(1.0, {1} / (%s + %s))" % (gn, _E),
                                     args)
        else:  # pragma: no cover - guarded by SUPPORTED
            raise ValueError(f"codegen does not know op {s.op!r}")
        expected = OPS[s.op].out_kind([k for _, k in args])
        assert kind == expected, (s, kind, expected)
        self.kinds[s.target] = kind
        out.append(f"{self.name(s.target)} = {code}")
        return out


def _docstring_program(program: Program) -> str:
    return "\n".join("    " + line for line in program.text().rstrip("\n").split("\n"))


def to_module_source(program: Program, name: str = "discovered",
                     source: Optional[str] = None) -> str:
    """The text of a self-contained Python module defining ``name(learning_rate=1.0)``, an
    ``optax.GradientTransformation`` that runs ``program`` (see the module docstring)."""
    if not name.isidentifier() or keyword.iskeyword(name) or name in _RESERVED \
            or name.startswith("_"):
        raise ValueError(f"{name!r} is not a usable Python function name")
    check(program)
    missing = sorted({s.op for s in program.stmts} - SUPPORTED)
    if missing:
        raise ValueError(f"codegen does not support {', '.join(missing)}")
    live = strip_dead(program)
    slots = [s for s in STATE if s in live_state(program)]
    state_cls = _camel(name) + "State"
    wr = _Writer(live)
    read = {a for s in live.stmts for a in s.vars()} | {live.returns[0]} | \
        {live.returns[1 + STATE.index(s)] for s in slots}

    body: List[str] = []
    if "lr" in read:
        body += ["lr = learning_rate(state.count) if callable(learning_rate) else learning_rate",
                 "lr = jnp.asarray(lr, jnp.float32)"]
    for var, src in (("w", "params"), ("g", "updates"), ("m", "state.m"), ("v", "state.v")):
        if var in read:
            body.append(f"{wr.name(var)} = {src}")
    for s in live.stmts:
        body += wr.stmt(s)

    def out(var: str, neg: str = "") -> str:
        code, kind = wr.name(var), wr.kinds[var]
        if kind == TENSOR:
            return f"jax.tree.map(lambda _x, _p: {neg}_x.astype(_p.dtype), {code}, params)"
        return (f"jax.tree.map(lambda _p: {neg}jnp.broadcast_to(jnp.asarray({code}, _p.dtype), "
                f"_p.shape), params)")

    body += ["# optax adds updates to the parameters: emit -update, in the parameters' dtypes",
             f"new_updates = {out(live.returns[0], '-')}"]
    for s in slots:
        body.append(f"new_{s} = {out(live.returns[1 + STATE.index(s)])}")
    fields = ", ".join(["count=optax.safe_int32_increment(state.count)"] +
                       [f"{s}=new_{s}" for s in slots])
    body.append(f"return new_updates, {state_cls}({fields})")

    removed = len(program.stmts) - len(live.stmts)
    dropped = [s for s in STATE if s not in slots]
    slot_text = ", ".join(slots) if slots else "none"
    notes = [f"Live state slots: {slot_text}" + (
        f" ({' and '.join(dropped)}: never read by an update, not stored)." if dropped else ".")]
    if removed:
        notes.append(f"{removed} dead statement{'s' if removed != 1 else ''} removed.")
    from .canon import program_hash  # provenance only; the module does not import optevo
    src = f" from {source}" if source else ""

    lines = [
        f'"""An optimizer program{src}, exported as an optax transformation.',
        "",
        "Generated by optevo (``optevo export --format optax``); self-contained: it needs only",
        "jax and optax. The program (w: weights, g: gradient, m and v: state that starts at",
        "zero, lr: the learning rate this step; the training loop does w = w - update)::",
        "",
        _docstring_program(program),
        "",
        f"Program hash {program_hash(program)}. " + " ".join(notes),
        "Safe forms as in the search: division adds 1e-8 to the denominator, sqrt and log",
        "act on |x|; constants are Python floats, so constant arithmetic is in double.",
        '"""',
        "",
        "from typing import Any, NamedTuple",
        "",
        "import jax",
        "import jax.numpy as jnp",
        "import optax",
        "",
        "",
        f"class {state_cls}(NamedTuple):",
        f'    """State of ``{name}``: the step count and one slot per live state variable."""',
        "",
        "    count: jax.Array",
        *[f"    {s}: Any" for s in slots],
        "",
        "",
    ]
    for h in ("_total", "_global_norm"):
        if h in wr.helpers:
            lines += [_HELPERS[h], ""]
    lines += [
        f"def {name}(learning_rate=1.0) -> optax.GradientTransformation:",
        '    """The program as a GradientTransformation (``update`` needs ``params``).',
        "",
        "    ``learning_rate`` (a float or an optax schedule of the step count) is the program's",
        "    ``lr`` input; the program scales it itself, so 1.0 runs it as written.",
        '    """',
        "",
        "    def init_fn(params):",
        f"        return {state_cls}(",
        "            count=jnp.zeros([], jnp.int32),",
        *[f"            {s}=jax.tree.map(jnp.zeros_like, params)," for s in slots],
        "        )",
        "",
        "    def update_fn(updates, state, params=None):",
        "        if params is None:",
        '            raise ValueError("this optimizer reads the weights: pass params to update()")',
        *["        " + b for b in body],
        "",
        "    return optax.GradientTransformation(init_fn, update_fn)",
        "",
    ]
    return "\n".join(lines)
