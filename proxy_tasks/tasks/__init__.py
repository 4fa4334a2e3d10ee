"""The Task API (:mod:`.base`) and the built-in tasks; importing this package registers them:
the search proxies ``digits_mlp``, ``text_lm``, ``quadratic``, ``rosenbrock``, the planted
tasks ``binary_regression``, ``deep_linear`` and ``diagonal_scales``, and the funnel's larger
``digits_cnn`` and ``lm_transformer``.
:mod:`.gradient_free` holds the programs that ignore the gradient, which every task must
make lose (``tests/test_task_quality.py``)."""

from .base import (Rule, Task, TaskError, TaskOptionError, check_options, get_task, register,
                   task_class, task_names, task_options)
from . import digits, synthetic, text_lm  # noqa: F401  (import registers the tasks)
from . import digits_cnn, lm_transformer  # noqa: F401  (larger tasks of the funnel)
from . import gradient_free, planted, schedules  # noqa: F401

__all__ = ["Task", "TaskError", "TaskOptionError", "Rule", "check_options", "register",
           "get_task", "task_class", "task_names", "task_options", "gradient_free", "schedules"]
