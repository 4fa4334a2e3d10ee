"""The Task API: what a proxy task must provide so that optevo can score an optimizer on it.

A task is a small, fully jittable training problem. The evaluation engines (the reference
path in ``optevo.dsl`` and the fast interpreter) run, for one seed::

    k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
    params = task.init_params(k_init)
    inst = task.instance(k_init)          # the seed's problem instance; () for most tasks
    for t in range(steps):
        batch = task.train_batch(jax.random.fold_in(k_data, t))
        g = jax.grad(task.loss_of)(params, batch, inst)
        update, m, v = program(w=params, g=g, m=m, v=v, lr=task.lr_schedule(t, steps) * lr_scale)
        params = params - update
    fitness = task.val_loss_of(params, inst)

Every method is traced by ``jax.jit``: use ``jax.numpy`` only, keep datasets as arrays held by
the task (they become constants of the compiled program), and draw batches with the key given.
Nothing may be downloaded: data must ship with an installed package.

To add a task, subclass :class:`Task`, fill in the methods, and register it::

    from optevo.proxy_tasks import register

    @register("my_task")
    class MyTask(Task):
        ...

A task whose problem itself is drawn per seed (the synthetic tasks draw their optimum and
rotation, so that no fixed point can be guessed by a program that ignores the gradient)
overrides :meth:`Task.instance` and takes the instance as the last argument of ``loss`` and
``val_loss``; a task that does not override it never sees one.

Every constructor argument must have a default, so that ``get_task("my_task")`` works; a
config or the CLI may override them as keyword arguments (``steps``, ``batch_size``, ...).

**Options are checked by the task's own rules, written once.** A task class may declare
``OPTIONS = {"hidden": Rule(int, ge=1), ...}`` (a subclass's entries override its bases');
an option without one gets the rule of its default's type (int, float, str or bool; a
float is finite). :func:`check_options` applies them, then the class's
:meth:`Task.check_joint` (rules across options); the config layer calls it when a config is
loaded (errors at the option's file and line) and the built-in constructors and
:func:`get_task` call it before anything is built. A broken rule is a
:class:`TaskOptionError` naming the option.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple

import inspect
import math
import numbers

import jax.numpy as jnp

from optevo.dsl.errors import OptevoError

PyTree = Any


class Task:
    """Base class of proxy tasks. Subclasses set the attributes and implement the methods.

    Attributes:
      name: registry name.
      steps: default number of training steps.
      batch_size: default mini-batch size (0 for full-batch or data-free tasks).
      seeds: default number of seeds a fitness is averaged over.
      max_abs_weight: a run whose largest |parameter| ends above this is diverged: blown-up
        weights can give a float32 loss that reads as perfect.
    """

    name: str = "task"
    OPTIONS: Dict[str, "Rule"] = {}  # option name -> its rule (see the module doc)
    steps: int = 100
    batch_size: int = 0
    seeds: int = 4
    max_abs_weight: float = 1e4

    def init_params(self, key) -> PyTree:
        """Initial parameters for one seed: a pytree of float32 arrays."""
        raise NotImplementedError

    def train_batch(self, key) -> PyTree:
        """One training mini-batch drawn with ``key`` (a pytree of arrays, may be empty)."""
        return ()

    def loss(self, params: PyTree, batch: PyTree) -> jnp.ndarray:
        """Scalar training loss of ``params`` on ``batch``; its gradient feeds the optimizer."""
        raise NotImplementedError

    def val_loss(self, params: PyTree) -> jnp.ndarray:
        """Scalar validation loss on held-out data: the fitness (lower is better)."""
        raise NotImplementedError

    def instance(self, key) -> PyTree:
        """The seed's problem instance, drawn from the same key as :meth:`init_params` (so a
        task can place its optimum relative to the start). Default: none (``()``)."""
        return ()

    @property
    def has_instance(self) -> bool:
        return type(self).instance is not Task.instance

    def loss_of(self, params: PyTree, batch: PyTree, inst: PyTree = ()) -> jnp.ndarray:
        """``loss`` of the seed whose instance is ``inst`` (what the engines call)."""
        return self.loss(params, batch, inst) if self.has_instance else self.loss(params, batch)

    def val_loss_of(self, params: PyTree, inst: PyTree = ()) -> jnp.ndarray:
        """``val_loss`` of the seed whose instance is ``inst`` (what the engines call)."""
        return self.val_loss(params, inst) if self.has_instance else self.val_loss(params)

    def metrics(self, params: PyTree) -> Dict[str, jnp.ndarray]:
        """Extra scalar metrics for reports (e.g. accuracy). Optional."""
        return {}

    def lr_schedule(self, step, total_steps) -> jnp.ndarray:
        """The value of the program's ``lr`` input at ``step`` (order 1; constant by default).

        The engines multiply it by the run's learning-rate scale (1.0 unless tuned)."""
        return jnp.float32(1.0)

    def describe(self) -> str:
        """One line for reports."""
        return f"{self.name}: {self.steps} steps, batch {self.batch_size}, {self.seeds} seeds"

    @classmethod
    def check_joint(cls, options: Dict[str, Any]) -> None:
        """Rules across options (``options``: every option, defaults filled in, each already
        valid by its own rule); raise :class:`TaskOptionError` naming one. Default: none."""


_REGISTRY: Dict[str, Callable[..., Task]] = {}


class TaskError(OptevoError, KeyError):
    """An unknown task name or a bad task option (one line)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class TaskOptionError(TaskError, ValueError):
    """A task option that breaks its rule: ``str(e)`` is ``task T: option O: PROBLEM``; the
    config layer shows ``e.problem`` at the option's file, line and key (``e.option``)."""

    def __init__(self, task: str, option: str, problem: str):
        self.task, self.option, self.problem = task, option, problem
        super().__init__(f"task {task}: option {option}: {problem}")


def _show(value: Any) -> str:
    """A value as YAML would read, on one short line."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, Mapping):
        return "a mapping"
    text = repr(value) if isinstance(value, (str, numbers.Number)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


class Rule(NamedTuple):
    """The rule of one task option: its ``kind`` (``int``: an integer, never a bool;
    ``float``: a finite number; ``str``; ``bool``; ``object``: anything), the bounds ``ge``,
    ``gt``, ``le``, ``lt``, the allowed ``choices``, and ``test``: a further check, a callable
    value -> the problem in words or None."""

    kind: type = object
    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None
    choices: Tuple = ()
    test: Optional[Callable[[Any], Optional[str]]] = None

    def describe(self) -> str:
        """What a valid value looks like: ``an integer >= 1``, ``one of 'unit', ...``."""
        if self.choices:
            return "one of " + ", ".join(_show(c) for c in self.choices)
        text = {int: "an integer", float: "a number", bool: "true or false",
                str: "a string"}.get(self.kind, "a value")
        bounds = [f"{op} {b:,}" if isinstance(b, int) else f"{op} {b:g}" for op, b in (
            (">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)) if b is not None]
        return " ".join([text, " and ".join(bounds)]).strip()

    def problem(self, value: Any) -> Optional[str]:
        """None if ``value`` keeps the rule, else the problem in words."""
        typed = {int: lambda v: isinstance(v, numbers.Integral),
                 float: lambda v: isinstance(v, numbers.Real) and math.isfinite(v),
                 bool: lambda v: isinstance(v, bool),
                 str: lambda v: isinstance(v, str)}.get(self.kind, lambda v: True)
        ok = typed(value) and (self.kind is bool or not isinstance(value, bool))
        if ok and self.kind in (int, float):
            ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                  and (self.le is None or value <= self.le)
                  and (self.lt is None or value < self.lt))
        if ok and self.choices:
            ok = any(type(value) is type(c) and value == c for c in self.choices)
        if not ok:
            return f"expected {self.describe()}, got {_show(value)}"
        return self.test(value) if self.test else None


def _parameters(cls) -> Dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls``'s constructor; empty if the signature cannot be
    read or takes ``**kwargs``."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return {}
    return {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                           p.KEYWORD_ONLY)}


def option_rules(cls) -> Dict[str, Rule]:
    """The rule of every option of task class ``cls``: its ``OPTIONS`` entry (a subclass's
    overrides its bases'), else the rule of the default's type (options whose default is of
    another type, or None, have none)."""
    derived = {n: Rule(type(p.default)) for n, p in _parameters(cls).items()
               if type(p.default) in (bool, int, float, str)}
    for klass in reversed(getattr(cls, "__mro__", ())):
        derived.update(vars(klass).get("OPTIONS", {}))
    return derived


def check_options(cls, options: Mapping[str, Any]) -> None:
    """Check ``options`` (names without a rule, such as ``self``, are passed over) by the
    rules of task class ``cls``, then by its :meth:`Task.check_joint` over the defaults;
    the first problem is a :class:`TaskOptionError`. A constructor calls
    ``check_options(type(self), locals())`` first."""
    name = getattr(cls, "name", None) or getattr(cls, "__name__", "task")
    rules = option_rules(cls)
    for key, value in options.items():
        problem = key in rules and rules[key].problem(value)
        if problem:
            raise TaskOptionError(name, key, problem)
    joint, params = getattr(cls, "check_joint", None), _parameters(cls)
    if joint is not None:
        joint({**{n: p.default for n, p in params.items()},
               **{k: v for k, v in options.items() if k in (params or rules)}})


def register(name: str):
    """Class decorator: make a Task subclass available as ``get_task(name)``."""

    def deco(cls):
        if name in _REGISTRY:
            raise ValueError(f"task {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def task_names():
    return sorted(_REGISTRY)


def task_class(name: str) -> Callable[..., Task]:
    """The class (or factory) registered as ``name``; :class:`TaskError` if there is none."""
    if name not in _REGISTRY:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return _REGISTRY[name]


def task_options(name: str) -> Dict[str, inspect.Parameter]:
    """The keyword options of task ``name``'s constructor (name -> parameter, with its
    default); empty if the signature cannot be read or takes ``**kwargs``."""
    return _parameters(task_class(name))


def get_task(name: str, **overrides) -> Task:
    """An instance of the registered task ``name``; ``overrides`` go to its constructor after
    :func:`check_options`. Any error of the constructor (a plugin's own code, or a size too
    large to build) is a :class:`TaskError` in one line."""
    cls, params = task_class(name), _parameters(task_class(name))
    for key in overrides:
        if params and key not in params:
            raise TaskOptionError(name, key, f"unknown option; allowed: {', '.join(params)}")
    check_options(cls, overrides)
    try:
        return cls(**overrides)
    except OptevoError:
        raise
    except Exception as e:  # the task's own code: reported like check_task's
        text = (str(e).strip().splitlines() or [""])[0][:300]
        raise TaskError(f"task {name}: cannot be built with these options "
                        f"({type(e).__name__}: {text})") from None


def check_task(task: Task) -> None:
    """Build one step of ``task`` abstractly (``jax.eval_shape``: nothing is computed): its
    initial parameters, instance, a batch, the training and validation losses. A task that
    cannot run with its options (a negative or empty batch, a shape error in the user's
    code, a non-scalar loss) raises :class:`TaskError` in one line, before a run creates
    anything."""
    import jax
    name = getattr(task, "name", type(task).__name__)
    if not (isinstance(task.max_abs_weight, (int, float)) and task.max_abs_weight > 0):
        raise TaskError(f"task {name}: max_abs_weight must be a number > 0, got "
                        f"{task.max_abs_weight!r}")
    if not isinstance(task.batch_size, int) or task.batch_size < 0:
        raise TaskError(f"task {name}: batch_size must be an integer >= 0, got "
                        f"{task.batch_size!r}")

    def one(key):
        params, inst = task.init_params(key), task.instance(key)
        batch = task.train_batch(key)
        return task.loss_of(params, batch, inst), task.val_loss_of(params, inst), batch

    try:
        loss, val, batch = jax.eval_shape(one, jax.random.PRNGKey(0))
    except Exception as e:  # the user's task code: any error is reported, in one line
        text = (str(e).strip().splitlines() or [""])[0][:300]
        raise TaskError(f"task {name}: cannot run with these options ({type(e).__name__}: "
                        f"{text})") from None
    if loss.shape != () or val.shape != ():
        raise TaskError(f"task {name}: loss and val_loss must be scalars, got shapes "
                        f"{loss.shape} and {val.shape}")
    if any(0 in leaf.shape for leaf in jax.tree_util.tree_leaves(batch)):
        raise TaskError(f"task {name}: a training batch is empty (batch_size "
                        f"{task.batch_size}); set task.options.batch_size >= 1")

