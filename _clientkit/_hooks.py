"""cattrs structure hooks both clients' converters register for untrusted wire JSON.

cattrs' defaults coerce (`str(None) == "None"`, `float(True) == 1.0`); these refuse what the wire must not
carry and accept what real servers send (a number as a numeric string).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["lenient_float", "strict_str"]


def strict_str(value: Any, _: Any) -> str:
    """A string, never a coerced null or number."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def lenient_float(value: Any, _: Any) -> float:
    """A finite number, given as a JSON number or a numeric string; never a boolean."""
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise TypeError(f"expected a number or a numeric string, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number
