"""On/off switches read from the environment (``OPTEVO_BATCH_PROGRAMS``, ``OPTEVO_NATIVE``):
one spelling for all, and one line for a value that is neither."""

from __future__ import annotations

import os
from typing import Optional, Type


def env_switch(name: str, unset: str, error: Type[Exception]) -> Optional[bool]:
    """``name``'s value: True for on/1/true, False for off/0/false (any case), None when unset
    or empty; anything else raises ``error`` naming the value and what ``unset`` means."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("on", "1", "true"):
        return True
    if value in ("off", "0", "false"):
        return False
    if value:
        raise error(f"{name}={os.environ[name]!r}: use on or off (unset: {unset})")
    return None
