"""attrs validators for settings values: attrs' own bounds (`ge`, `gt`, `lt`) after a number check.

The check before the bounds refuses what `attrs.validators.instance_of(int)` lets through (a bool is an
int) and raises `ValueError`, as the hand-written validators these replace did, so `except ValueError`
around a settings class keeps working. Every message names the field and what it allows, e.g.
`'period' must be > 0: -1` or `'max_retries' must be an int, not a bool: True`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["finite_number", "integer"]

_Validator = Any  # attrs' validator type is private (`attrs._ValidatorType`)


def _number_of(kind: type[int] | tuple[type[int], type[float]], what: str) -> _Validator:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(  # noqa: TRY004 - a ValueError, as callers expect of every bad setting
                f"'{attribute.name}' must be {what}, not a {type(value).__name__}: {value!r}"
            )

    return check


def integer(*, ge: int) -> _Validator:
    """An int (not a bool) >= `ge`."""
    return attrs.validators.and_(_number_of(int, "an int"), attrs.validators.ge(ge))


def finite_number(*, gt: float | None = None, ge: float | None = None) -> _Validator:
    """An int or a float (not a bool), finite, and > `gt` or >= `ge`."""
    bound = attrs.validators.gt(gt) if gt is not None else attrs.validators.ge(ge)
    return attrs.validators.and_(
        _number_of((int, float), "a number"), bound, attrs.validators.lt(math.inf)
    )
