"""The demos' checks (`orchestrator._demo`), without an emulator: each finds a wrong, missing or
unexpected output in a batch's report, and passes a right one."""

from __future__ import annotations

from pathlib import Path

from mediacrush_async.testing import content_hash_of, expected_derived_bytes
from orchestrator._adapters.mediacrush import DerivedFile, Manifest
from orchestrator._demo import MEDIACRUSH_DEMO, RECURO_DEMO
from orchestrator._report import build_report
from orchestrator._stages import Item, Stage
from recuro_async.testing import expected_restored_bytes


def _item(seq: int, source: Path, output: Path, stage: Stage, code: str | None = None) -> Item:
    item = Item(key=str(source), seq=seq, input=str(source), output_path=str(output), stage=stage)
    item.error_code = code
    return item


def test_recuro_checks_every_output_against_the_expected_restored_bytes(tmp_path):
    """A right output verifies; a wrong one, a missing one and a failed item are named."""
    samples = RECURO_DEMO.samples(tmp_path / "in", count=4, seed=3)
    out = tmp_path / "out"
    out.mkdir()
    items = []
    for n, source in enumerate(samples):
        output = out / f"{source.stem}.mp4"
        expected = expected_restored_bytes(
            source.read_bytes(),
            output_format=RECURO_DEMO.output_format,
            filters=list(RECURO_DEMO.filters),
            output_scaling=RECURO_DEMO.output_scaling,
        )
        if n != 2:  # the third was never written
            output.write_bytes(expected if n != 1 else expected[::-1])
        items.append(_item(n, source, output, Stage.FAILED if n == 3 else Stage.DONE))
    report = build_report(items, service="recuro", settings={})
    problems, summary = RECURO_DEMO.verify(samples, report)
    assert problems == [
        f"{samples[1].name}: output differs from the expected restored bytes",
        f"{samples[2].name}: no output",
        f"{samples[3].name}: no output",
    ]
    assert summary == "1/4 outputs byte-identical to the expected restored bytes"


def _manifest_item(seq: int, source: Path, out: Path, *, right: bool) -> Item:
    original = source.read_bytes()
    file_hash = content_hash_of(original)
    name = f"{file_hash}{source.suffix}"
    data = expected_derived_bytes(original, name, original_ext=source.suffix.lstrip("."))
    (out / name).write_bytes(data if right else data + b"x")
    manifest = Manifest(file_hash, "image", (DerivedFile(name, "file", "", path=str(out / name)),))
    output = out / f"{source.name}.mediacrush.json"
    output.write_text(manifest.to_json(), encoding="utf-8")
    return _item(seq, source, output, Stage.DONE)


def test_mediacrush_checks_derived_files_and_the_text_files_failure(tmp_path):
    """Each media sample's derived files are compared; the text file must fail as unrecognised."""
    samples = MEDIACRUSH_DEMO.samples(tmp_path / "in", count=0, seed=1)
    assert [s.name for s in samples][-1] == "notes.txt"
    out = tmp_path / "out"
    out.mkdir()
    media = samples[:-1]
    items = [_manifest_item(n, s, out, right=n != 0) for n, s in enumerate(media)]
    text = _item(len(media), samples[-1], out / "notes", Stage.FAILED, "unrecognised")
    problems, summary = MEDIACRUSH_DEMO.verify(
        samples, build_report([*items, text], service="m", settings={})
    )
    derived = f"{content_hash_of(media[0].read_bytes())}{media[0].suffix}"
    assert problems == [f"{media[0].name}: {derived} differs from what was expected"]
    assert summary.startswith(f"{len(media) - 1}/{len(media)} media files verified")
    assert summary.endswith("notes.txt failed as unrecognised, as expected")

    done_text = _item(len(media), samples[-1], out / "notes", Stage.DONE)
    problems, summary = MEDIACRUSH_DEMO.verify(
        samples[1:], build_report([*items[1:], done_text], service="m", settings={})
    )
    assert problems == ["notes.txt: expected to fail as unrecognised"]
    assert summary.endswith("notes.txt did not fail as expected")


def test_mediacrush_names_a_sample_missing_from_the_batch(tmp_path):
    """A sample the report does not list is 'not in the batch'."""
    samples = MEDIACRUSH_DEMO.samples(tmp_path / "in", count=0, seed=1)
    problems, _ = MEDIACRUSH_DEMO.verify(samples[:1], build_report([], service="m", settings={}))
    assert problems == [f"{samples[0].name}: not in the batch"]
