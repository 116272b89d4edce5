"""Error tables: each client turns failures and statuses into its own exceptions with data, not if-ladders.

As httpx maps httpcore's exceptions with one dict walked along the exception's MRO
(`map_httpcore_exceptions`), a client keeps one table module holding two kinds of rows:

- a `FailureTable`: a shared failure class (or an httpx exception class) -> a function building the
  client's exception; the most specific class of the failure wins, so the rows' order does not matter
  and a new subclass falls back to its parent's row;
- `StatusRow`s: an HTTP status (one code or a range) and, where the API sends one, a pattern of the
  body's error code -> an exception class; the first matching row wins, so they are ordered.

`translating()` is the one boundary that consults a failure table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Generic, TypeVar

import attrs

from ._failures import ClientkitFailure

__all__ = [
    "ANY_CODE",
    "Call",
    "FailureTable",
    "StatusRow",
    "most_specific",
    "status_row",
    "translating",
]

_T = TypeVar("_T")
_V = TypeVar("_V")

# a code pattern matching any error code the body has (but not a body without one)
ANY_CODE: Final = re.compile("")


@attrs.frozen
class Call:
    """Where a failure happened: `name` (the action or route, kept on the error) and `label` (for messages)."""

    name: str
    label: str


# a row's builder takes the failure (of the row's class) and the call; the table is typed loosely because
# each row takes its own failure class
FailureTable = Mapping[type[BaseException], Callable[[Any, Call], Exception]]


def most_specific(table: Mapping[type[BaseException], _V], exc: BaseException) -> _V | None:
    """The value of the most specific class of `exc` that `table` has a row for (its MRO walked), or None."""
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


@contextmanager
def translating(table: FailureTable, call: Call) -> Iterator[None]:
    """Raise the client's exception for a shared failure the block raises, `from` the failure.

    A failure without a row escapes as it is: every client's table has a `ClientkitFailure` row, and
    its tests check that every failure class maps to one of the client's own errors.
    """
    try:
        yield
    except ClientkitFailure as failure:
        build = most_specific(table, failure)
        if build is None:
            raise
        raise build(failure, call) from failure


@attrs.frozen
class StatusRow(Generic[_T]):
    """One row of a status table: matches when both `status` and `code` match (None matches anything).

    `status` is one status or a range of them. `code` is searched (`re.search`) in the body's error
    code; a row with a pattern never matches a body without an error code (`ANY_CODE` requires one).
    """

    result: _T
    status: int | range | None = None
    code: re.Pattern[str] | None = None

    def matches(self, status: int, code: str | None) -> bool:
        """Whether a response with this status and error code (None: no API error body) falls in the row."""
        if isinstance(self.status, int) and status != self.status:
            return False
        if isinstance(self.status, range) and status not in self.status:
            return False
        return self.code is None or (code is not None and self.code.search(code) is not None)


def status_row(
    rows: Iterable[StatusRow[_T]], status: int, code: str | None
) -> StatusRow[_T] | None:
    """The first row matching the status and error code, or None (the caller's default applies)."""
    return next((row for row in rows if row.matches(status, code)), None)
