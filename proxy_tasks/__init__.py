"""optevo.proxy_tasks: small, jittable training problems that score optimizer programs.

Importing this package registers the built-in tasks: ``digits_mlp``, ``text_lm``,
``quadratic`` and ``rosenbrock``, and the funnel's larger tasks ``digits_cnn`` and
``lm_transformer``. See :mod:`optevo.proxy_tasks.base` for the Task API and
:mod:`optevo.proxy_tasks.fitness` for how per-seed losses become a fitness.
"""

from .base import Task, TaskError, get_task, register, task_class, task_names, task_options
from . import digits, synthetic, text_lm  # noqa: F401  (import registers the tasks)
from . import digits_cnn, lm_transformer  # noqa: F401  (larger tasks of the funnel)
from . import fitness, gradient_free  # noqa: F401

__all__ = ["Task", "TaskError", "register", "get_task", "task_class", "task_names",
           "task_options", "fitness", "gradient_free"]
