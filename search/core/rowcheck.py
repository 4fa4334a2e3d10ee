"""Field types of the JSON-lines files a run writes and reads back for display.

A run directory is data that may have been damaged or edited by hand: every row read back is
checked against its file's schema, so that a wrong type is one line naming the file, the line
and the field (``RunDirError``), never a traceback further on. A field may be missing (older
runs wrote fewer); a field the schema does not name is passed through unchecked.
"""

from __future__ import annotations

from numbers import Real
from typing import Dict, Iterable, List, Tuple

from .files import RunDirError

NUM = (Real, type(None))
TEXT = (str, type(None))
FLAG = (bool, type(None))
# holdout.jsonl: one row per re-checked program or baseline (``holdout.py``; a suite's
# multipliers are lists, one per task)
HOLDOUT = {"id": (int, str), "hash": TEXT, "program": TEXT, "simplified": TEXT,
           "fitness": NUM, "lr_scale": NUM + (list,), "weight_decay_factor": NUM + (list,),
           "holdout": NUM,
           "holdout_stderr": NUM, "diff": NUM, "diff_stderr": NUM, "diff_adamw": NUM,
           "diff_adamw_stderr": NUM, "lr_at_edge": FLAG, "weight_decay_at_edge": FLAG,
           "decay_added": FLAG, "diverged": FLAG, "significant": FLAG, "beats_adamw": FLAG,
           "holdout_seeds": (list, type(None)), "holdout_losses": (list, type(None)),
           "diff_baselines": (dict, type(None))}


def _name(types: Tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", Real: "a number", bool: "true or false",
             list: "a list", dict: "a mapping", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def checked_rows(path, rows: Iterable[Dict], schema: Dict[str, Tuple[type, ...]]) -> List[Dict]:
    out = []
    for i, row in enumerate(rows, 1):
        for key, types in schema.items():
            if key not in row:
                continue
            value = row[key]
            ok = isinstance(value, types) and not (
                isinstance(value, bool) and bool not in types)
            if not ok:
                raise RunDirError(f"{path}: row {i}: {key}: expected {_name(types)}, got "
                                  f"{type(value).__name__} (a damaged file?)")
        out.append(row)
    return out
