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
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import inspect

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


_REGISTRY: Dict[str, Callable[..., Task]] = {}


class TaskError(OptevoError, KeyError):
    """An unknown task name or a bad task option (one line)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


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
    try:
        params = inspect.signature(task_class(name)).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return {}
    return {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                           p.KEYWORD_ONLY)}


def get_task(name: str, **overrides) -> Task:
    """An instance of the registered task ``name``; ``overrides`` go to its constructor."""
    return task_class(name)(**overrides)


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

