"""optevo.proxy_tasks: small, jittable training problems that score optimizer programs.

Three rooms: :mod:`.tasks` (the Task API and the built-in tasks; importing this package
registers them), the engines here (:mod:`.engine`: the one training loop and the fast
engine, which runs programs in it through a compiled interpreter, or the opt-in native step
of :mod:`.native`; :mod:`.jit_engine`, the reference; :mod:`.optax_engine`, the optax
baselines; :mod:`.evaluate`, :mod:`.fitness` and :mod:`.tuning`: from per-seed losses to a
fitness and a tuned setting), and
:mod:`.baselines` (optimizers that are not programs: optax AdamW and Lion, hypergradient and
learned optimizers).
"""

from .tasks import Task, TaskError, get_task, register, task_class, task_names, task_options
from .tasks import base, gradient_free, schedules  # noqa: F401
from .baselines import hypergrad, l2l  # noqa: F401
from . import fitness  # noqa: F401

__all__ = ["Task", "TaskError", "register", "get_task", "task_class", "task_names",
           "task_options", "fitness", "gradient_free"]
