"""An emulator of the MediaCrush server, for tests, demos and benchmarks (MEDIACRUSH.md, SPEC section 4).

It follows what the real server did (`MediaCrush/MediaCrush` at `b32e275`), with a switch in
`EmulatorConfig` for each place where the public document says otherwise. It shares no code with
the client: ids, wire shapes and status rules are written here independently.
"""

from __future__ import annotations

from ._config import EmulatorConfig
from ._emulator import MediaCrushEmulator, RunningEmulator, run_emulator
from ._log import LogEntry
from ._media import content_hash_of, expected_derived_bytes
from ._samples import SAMPLE_KINDS, sample_media

__all__ = [
    "SAMPLE_KINDS",
    "EmulatorConfig",
    "LogEntry",
    "MediaCrushEmulator",
    "RunningEmulator",
    "content_hash_of",
    "expected_derived_bytes",
    "run_emulator",
    "sample_media",
]

for _obj in (EmulatorConfig, LogEntry, MediaCrushEmulator, RunningEmulator, run_emulator):
    _obj.__module__ = __name__
for _func in (content_hash_of, expected_derived_bytes, sample_media):
    _func.__module__ = __name__
del _obj, _func
