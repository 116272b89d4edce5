"""Preparing a batch: journal items plus new inputs, each with its own output path; done items verified.

A rerun of the same command finds its items in the journal: done ones are skipped (after checking that their
output is still on disk), failed ones stay failed unless `--retry-failed`, and everything else resumes where
it stood. New inputs get a row each before anything is sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import anyio.to_thread

from ._events import ItemDone, ItemQueued
from ._outputs import output_path
from ._stages import Item, Stage
from ._staging import is_url

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._config import RunnerConfig
    from ._effects import Gate
    from ._service import ServiceAdapter


class Policy(Protocol):
    """What preparing needs from the item machine: its config, its retry policy and two of its moves."""

    config: RunnerConfig

    def may_retry(self, item: Item) -> bool: ...
    def needs_cleanup(self, item: Item) -> bool: ...
    async def requeue(self, item: Item, why: str) -> None: ...
    async def emit_failed(self, item: Item) -> None: ...


__all__ = [
    "EMPTY_INPUT_CODE",
    "empty_input_problem",
    "input_key",
    "local_file_problem",
    "prepare",
    "size_and_sha256",
]

log = logging.getLogger("orchestrator")

_HASH_CHUNK: Final = 1024 * 1024
#: The `error_code` an item gets when its local input is empty.
EMPTY_INPUT_CODE: Final = "EmptyInput"


async def prepare(
    inputs: list[str],
    *,
    gate: Gate,
    machine: Policy,
    adapter: ServiceAdapter,
    clock: Clock,
) -> tuple[dict[str, Item], list[Item]]:
    """Load the journal, add new inputs, verify done items, requeue failures if asked.

    Returns every item of the batch by key, and those with work left, in batch order.
    """
    config = machine.config
    known = {item.key: item for item in await gate.load()}
    new_items = await anyio.to_thread.run_sync(
        _new_items, inputs, known, config.out_dir, adapter.output_name, gate.fingerprint
    )
    if new_items:
        await gate.add(new_items)
        known.update((item.key, item) for item in new_items)
    now = clock.monotonic()
    ordered = sorted(known.values(), key=lambda item: item.seq)
    for item in ordered:
        await gate.emit(ItemQueued(key=item.key, input=item.input, stage=item.stage, at=now))
    done = [i for i in ordered if i.stage is Stage.DONE]
    missing: set[str] = set()
    if config.verify_done and done:
        missing = await anyio.to_thread.run_sync(_missing_outputs, done)
    work = []
    for item in ordered:
        if item.stage is Stage.DONE:
            if item.key in missing:
                log.warning("output of a done item is missing; restoring it again")
                await machine.requeue(item, "output missing")
                work.append(item)
            else:
                await gate.emit(
                    ItemDone(
                        key=item.key,
                        output_path=item.output_path,
                        size=item.output_size or 0,
                        sha256=item.sha256 or "",
                        skipped=True,
                        at=now,
                    )
                )
        elif item.stage is Stage.FAILED:
            if machine.may_retry(item):
                await machine.requeue(item, "retry failed")
                work.append(item)
            elif config.retry_failed or machine.needs_cleanup(item):
                work.append(item)  # delete its media first, then (if asked) retry
            else:
                await machine.emit_failed(item)
        elif item.stage is Stage.PARKED:
            await machine.emit_failed(item)
        else:
            work.append(item)
    return known, work


def input_key(text: str) -> str:
    """The journal key of an input: the URL as given, or the absolute path of a local file."""
    if is_url(text):
        return text
    return str(Path(text).expanduser().resolve())


def _new_items(
    inputs: list[str],
    known: dict[str, Item],
    out_dir: Path,
    output_name: Callable[[str], str],
    fingerprint: str,
) -> list[Item]:
    """Items for inputs the journal does not have yet, each with its own output path (thread)."""
    taken = {item.output_path.casefold() for item in known.values()}
    seq = max((item.seq for item in known.values()), default=-1) + 1
    new: list[Item] = []
    seen = set(known)
    for text in inputs:
        key = input_key(text)
        if key in seen:
            continue
        seen.add(key)
        size = None
        if not is_url(text):
            try:
                size = Path(key).stat().st_size
            except OSError:
                size = None  # staging fails the item with the reason
        output = output_path(out_dir, output_name(_base_name(text)), taken)
        new.append(
            Item(
                key=key,
                seq=seq,
                input=text,
                output_path=str(output),
                size=size,
                spec_fingerprint=fingerprint,
            )
        )
        seq += 1
    return new


def _base_name(text: str) -> str:
    if is_url(text):
        tail = text.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return tail or "media"
    return Path(text).name


def _missing_outputs(items: list[Item]) -> set[str]:
    missing = set()
    for item in items:
        try:
            size = Path(item.output_path).stat().st_size
        except OSError:
            missing.add(item.key)
            continue
        if item.output_size is not None and size != item.output_size:
            missing.add(item.key)
    return missing


def size_and_sha256(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file (blocking: run it in a worker thread)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def empty_input_problem(name: str, size: int | None) -> str | None:
    """Why a local input of `size` bytes cannot be sent, or None; `size=None` (a URL) is not judged.

    An empty file has nothing to restore or host: the services would fail it late (or, worse, accept it),
    so it is refused before any request. The engine and both commands use these words.
    """
    if size == 0:
        return f"{name}: the file is empty (0 bytes); there is nothing to send"
    return None


def local_file_problem(text: str, *, suffixes: Collection[str] | None = None) -> str | None:
    """What is wrong with a local input (missing, not a regular file, a container not in `suffixes`,
    unreadable, empty), or None: checked before any request (blocking)."""
    path = Path(text).expanduser()
    try:
        if not path.exists():
            return f"{text}: no such file"
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "is special"
            return f"{text}: {what}, not a regular file"
        if suffixes is not None and path.suffix.lower() not in suffixes:
            allowed = ", ".join(sorted(e.lstrip(".").upper() for e in suffixes))
            found = path.suffix or "(no extension)"
            return f"{text}: unsupported container {found!r}; supported: {allowed}"
        with path.open("rb") as handle:
            handle.read(1)
        size = path.stat().st_size
    except OSError as exc:
        return f"{text}: cannot read the file ({exc.strerror or exc})"
    return empty_input_problem(text, size)
