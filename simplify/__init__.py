"""optevo.simplify: shorten programs without changing what they compute (exact passes), then
drop and round what a task does not need (fitness-guided passes); ``optevo simplify``."""

from .exact import simplify_exact, simplify_exact_report
from .graph import Graph
from .guided import Step, removal_candidates, rounding_candidates, simplify_guided

__all__ = ["Graph", "simplify_exact", "simplify_exact_report", "Step", "removal_candidates",
           "rounding_candidates", "simplify_guided"]
