"""The services' demos: sample inputs, the emulator they run on, and the checks of what a batch made.

A demo is a service's main job end to end on its embedded emulator, offline: write the samples, start the
emulator, run one batch on them (the commands' `PROG demo` runs its own batch command; an embedder or a test
can run `open_batch`), then read off the emulator what it saw and check every output byte for byte against
what the emulator is known to produce, from the batch's `Report`. The emulators (the `testing` extras) are
imported only when a demo runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Final, Protocol

import attrs

from ._adapters.mediacrush import read_manifest
from ._report import Report, ReportItem

__all__ = ["MEDIACRUSH_DEMO", "RECURO_DEMO", "Demo", "MediaCrushDemo", "RecuroDemo"]


class Demo(Protocol):
    """A service's demo: its samples, its emulator, and the checks of a batch's outputs."""

    def samples(self, directory: Path, *, count: int, seed: int) -> list[Path]:
        """Write the sample inputs into `directory` (blocking); `count` where the set has no fixed size."""
        ...

    def emulator(self, time_scale: float, seed: int) -> AbstractAsyncContextManager[Any]:
        """The emulator, started on loopback (a running emulator with `base_url` and `emulator`)."""
        ...

    def observe(self, emulator: Any, count: int) -> tuple[int, str]:
        """What the emulator saw: media left on it, and the requests it served (one phrase)."""
        ...

    def verify(self, samples: Sequence[Path], report: Report) -> tuple[list[str], str]:
        """Every problem with the outputs the report names, and one phrase saying what verified
        (blocking)."""
        ...


def _by_input(report: Report) -> dict[str, ReportItem]:
    return {item.input: item for item in report.items}


@attrs.frozen
class RecuroDemo:
    """Reels of varied containers and sizes, restored with one job setting, compared with the emulator's
    `expected_restored_bytes`; nothing may be left on the account."""

    output_format: str = "Mp4H264"
    filters: tuple[str, ...] = ("Noise", "ColorBalance")
    output_scaling: str = "1080"

    @property
    def credentials(self) -> tuple[str, str]:
        """The key and secret the emulator accepts."""
        from recuro_async.testing import DEMO_API_KEY, DEMO_API_SECRET

        return DEMO_API_KEY, DEMO_API_SECRET

    def samples(self, directory: Path, *, count: int, seed: int) -> list[Path]:
        """`count` reels (`recuro_async.testing.make_samples`)."""
        from recuro_async.testing import make_samples

        return make_samples(directory, count, seed)

    def emulator(self, time_scale: float, seed: int) -> AbstractAsyncContextManager[Any]:
        """The Recuro emulator."""
        from recuro_async.testing import EmulatorConfig, run_emulator

        return run_emulator(EmulatorConfig(time_scale=time_scale, seed=seed))

    def observe(self, emulator: Any, count: int) -> tuple[int, str]:
        """API requests (downloads apart), the busiest rate window, media left on the account."""
        requests = sum(1 for e in emulator.log if e.action != "download")
        left = len(emulator.media_ids())
        return left, (
            f"{requests} API requests ({requests / count:.2f} per item), peak "
            f"{emulator.peak_window_count()} in any rate window (limit 200), {left} media left on "
            "the account"
        )

    def verify(self, samples: Sequence[Path], report: Report) -> tuple[list[str], str]:
        """Each sample's output against the emulator's expected restored bytes."""
        from recuro_async.testing import expected_restored_bytes

        items = _by_input(report)
        problems = []
        for original in samples:
            item = items.get(str(original))
            output = Path(item.output_path) if item is not None and item.output_path else None
            expected = expected_restored_bytes(
                original.read_bytes(),
                output_format=self.output_format,
                filters=list(self.filters),
                output_scaling=self.output_scaling,
            )
            if output is None or not output.is_file():
                problems.append(f"{original.name}: no output")
            elif output.read_bytes() != expected:
                problems.append(f"{original.name}: output differs from the expected restored bytes")
        verified = len(samples) - len(problems)
        return problems, (
            f"{verified}/{len(samples)} outputs byte-identical to the expected restored bytes"
        )


@attrs.frozen
class MediaCrushDemo:
    """Sample media (`mediacrush_async.testing.make_samples`) whose every derived file is compared with
    the emulator's `expected_derived_bytes`, and a text file that must fail as unrecognised."""

    expected_failure: str = "unrecognised"

    def samples(self, directory: Path, *, count: int, seed: int) -> list[Path]:  # noqa: ARG002
        """The emulator's demo set (a fixed one): media of each kind, then a text file."""
        from mediacrush_async.testing import make_samples

        return make_samples(directory, seed=seed)

    def emulator(self, time_scale: float, seed: int) -> AbstractAsyncContextManager[Any]:
        """The MediaCrush emulator."""
        from mediacrush_async.testing import EmulatorConfig, run_emulator

        return run_emulator(EmulatorConfig(time_scale=time_scale, seed=seed))

    def observe(self, emulator: Any, count: int) -> tuple[int, str]:  # noqa: ARG002
        """Requests served and files left on the server."""
        left = len(emulator.stored_names())
        return left, f"{len(emulator.log)} requests, {left} files left on the server"

    def verify(self, samples: Sequence[Path], report: Report) -> tuple[list[str], str]:
        """Every derived file of each media sample (its manifest names them); the text file failed."""
        from mediacrush_async.testing import content_hash_of, expected_derived_bytes

        items = _by_input(report)
        problems: list[str] = []
        verified = media_ok = 0
        texts = [s.name for s in samples if s.suffix == ".txt"]
        for source in samples:
            item = items.get(str(source))
            if source.suffix == ".txt":
                failed_as = item.error_code if item and item.outcome == "failed" else None
                if failed_as != self.expected_failure:
                    problems.append(f"{source.name}: expected to fail as {self.expected_failure}")
                continue
            if item is None or item.outcome != "done" or item.output_path is None:
                why = "not in the batch" if item is None else f"{item.stage} ({item.error_code})"
                problems.append(f"{source.name}: {why}")
                continue
            original = source.read_bytes()
            manifest = read_manifest(item.output_path)
            if manifest.hash != content_hash_of(original) or not manifest.files:
                problems.append(f"{source.name}: no derived files for its content hash")
                continue
            found = len(problems)
            for derived in manifest.files:
                expected = expected_derived_bytes(
                    original, derived.name, original_ext=source.suffix.lstrip(".")
                )
                if derived.path is None or Path(derived.path).read_bytes() != expected:
                    problems.append(f"{source.name}: {derived.name} differs from what was expected")
                else:
                    verified += 1
            media_ok += len(problems) == found
        failed = any(p.startswith(tuple(texts)) for p in problems)
        text = (
            "did not fail as expected"
            if failed
            else f"failed as {self.expected_failure}, as expected"
        )
        return problems, (
            f"{media_ok}/{len(samples) - len(texts)} media files verified ({verified} derived files "
            f"byte-identical to the emulator's expected bytes); {', '.join(texts)} {text}"
        )


RECURO_DEMO: Final = RecuroDemo()
MEDIACRUSH_DEMO: Final = MediaCrushDemo()
