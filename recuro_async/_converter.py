"""The one cattrs converter that maps Recuro JSON to models.

Policy, per the document ("all responses should also be considered to be case insensitive"):
keys are lower-cased in one recursive pass before structuring; `progress` may be a number or a numeric
string; `restored_file_url` absent, null or "" means "not yet". `str` and `bool` are strict (cattrs'
defaults would turn null into "None"), numbers are lenient but never accept a bool.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from _clientkit._hooks import lenient_float, strict_str

from ._enums import Filter, OutputFormat, State
from ._models import FilterInfo, Media, OutputFormatInfo, Progress

__all__ = ["converter", "normalise_keys", "structure"]

_T = TypeVar("_T")


def normalise_keys(data: Any) -> Any:
    """Lower-case every mapping key, recursively (the document's case-insensitivity rule)."""
    if isinstance(data, dict):
        return {
            (k.lower() if isinstance(k, str) else k): normalise_keys(v) for k, v in data.items()
        }
    if isinstance(data, list):
        return [normalise_keys(v) for v in data]
    return data


def _optional_url(value: Any, _: type) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a URL string, got {type(value).__name__}")
    return value


def _state(value: Any, _: type) -> State:
    if not isinstance(value, str):
        raise TypeError(f"expected a state string, got {type(value).__name__}")
    return State(value)  # an unlisted value becomes State.UNKNOWN


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True)
    # Simple types first: generated hooks capture the hooks that exist when they are built.
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(float, lenient_float)
    conv.register_structure_hook(State, _state)
    conv.register_structure_hook(Filter, lambda v, _: Filter(strict_str(v, str)))
    conv.register_structure_hook(OutputFormat, lambda v, _: OutputFormat(strict_str(v, str)))

    optional_url = override(struct_hook=_optional_url)
    conv.register_structure_hook(
        Media, make_dict_structure_fn(Media, conv, restored_file_url=optional_url)
    )
    conv.register_structure_hook(
        FilterInfo, make_dict_structure_fn(FilterInfo, conv, example_url=optional_url)
    )
    conv.register_structure_hook(OutputFormatInfo, make_dict_structure_fn(OutputFormatInfo, conv))

    progress_fn = make_dict_structure_fn(
        Progress, conv, restored_file_url=optional_url, raw_state=override(omit=True)
    )

    def _progress(value: Any, cls: type[Progress]) -> Progress:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        progress = progress_fn(value, cls)
        raw = value.get("state")
        return attrs.evolve(progress, raw_state=raw) if isinstance(raw, str) else progress

    conv.register_structure_hook(Progress, _progress)
    return conv


converter: Final = _make_converter()


def structure(data: Any, cls: type[_T]) -> _T:
    """Structure already-normalised JSON into `cls` (errors are the caller's to wrap)."""
    return converter.structure(data, cls)
