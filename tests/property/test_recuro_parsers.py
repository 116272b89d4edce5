"""Property: on arbitrary JSON (and bytes), the Recuro parsers raise nothing but the package's own errors."""

from __future__ import annotations

import contextlib
import json

import httpx
from hypothesis import given
from hypothesis import strategies as st

from _clientkit._transport import ResponseParts
from recuro_async._errors import RecuroError
from recuro_async._models import FilterInfo, Media, OutputFormatInfo, Progress
from recuro_async._protocol import Action, classify, parse_response, structure_as
from recuro_async.webhooks import parse_notification

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "state",
                    "STATE",
                    "progress",
                    "Progress",
                    "file_id",
                    "restored_file_url",
                    "name",
                    "error_code",
                    "error_message",
                    "long_name",
                    "x",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)
TARGETS = [
    (Action.GET_PROGRESS, Progress),
    (Action.LIST_MEDIA, list[Media]),
    (Action.LIST_FILTERS, list[FilterInfo]),
    (Action.LIST_OUTPUT_FORMATS, list[OutputFormatInfo]),
]


@given(
    value=json_values,
    status=st.sampled_from([200, 400, 404, 429, 500, 502]),
    target=st.sampled_from(TARGETS),
)
def test_parsers_raise_only_package_errors_on_any_json(value, status, target):
    """Any JSON body under any status either parses or raises a RecuroError."""
    action, cls = target
    parts = ResponseParts(status, httpx.Headers(), json.dumps(value).encode())
    classify(parts)
    with contextlib.suppress(RecuroError):
        structure_as(parse_response(action, parts), cls, action)


@given(body=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_notification_parser_raises_only_package_errors(body):
    """Arbitrary callback bodies either parse or raise a RecuroError."""
    with contextlib.suppress(RecuroError):
        parse_notification(body)
