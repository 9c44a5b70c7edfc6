"""Assertions the kind tests share."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from anagnorisis.kinds import MediaError, Probe
from anagnorisis.kinds.registry import MediaKind
from tests.media import BadFile, GoodFile

MAX_REASON_CHARS = 160


def assert_is_a_short_reason(reason: str, path: Path) -> None:
    """A reason is one short human line: no stack trace, no log tail, not the file's own name."""
    assert reason and reason == reason.strip(), repr(reason)
    assert "\n" not in reason and "Traceback" not in reason, reason
    assert len(reason) <= MAX_REASON_CHARS, reason
    assert path.name not in reason and os.fsdecode(path.parent) not in reason, reason


def assert_refused(kind: MediaKind, bad: BadFile) -> str:
    with pytest.raises(MediaError) as refused:
        kind.read_metadata(bad.path)
    reason = str(refused.value)
    assert_is_a_short_reason(reason, bad.path)
    return reason


def assert_reads_as_expected(kind: MediaKind, good: GoodFile, tolerance: float = 0.15) -> Probe:
    """Reads without warning, the metadata survives JSON, and every expected value matches (durations roughly)."""
    probe = kind.read_metadata(good.path)
    assert probe.warning is None, (good.path.name, probe.warning)
    assert json.loads(json.dumps(probe.metadata)) == probe.metadata, "metadata must be JSON-serialisable"
    for key, expected in good.expected.items():
        actual = probe.metadata.get(key)
        if key == "duration":
            assert actual == pytest.approx(expected, abs=tolerance), (good.path.name, key, actual)
        else:
            assert actual == expected, (good.path.name, key, actual, probe.metadata)
    return probe


def assert_damage_raises_only_media_errors(kind: MediaKind, good_files: list[GoodFile], folder: Path) -> None:
    """Deterministic bit flips, cuts and zeroed runs of every good file of a kind: each copy either reads or
    raises MediaError with a short reason; no other exception escapes a reader."""
    rng = random.Random(1234)
    for good in (good for good in good_files if good.kind == kind.name):
        data = good.path.read_bytes()
        for index in range(DAMAGED_COPIES):
            copy = folder / f"damaged {index}{good.path.suffix}"
            copy.write_bytes(_damaged(data, rng))
            try:
                kind.read_metadata(copy)
            except MediaError as error:
                assert_is_a_short_reason(str(error), copy)


DAMAGED_COPIES = 12  # per good file: enough to reach headers and bodies of these small files, under a second


def _damaged(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    how = rng.choice(("flip", "cut", "zero"))
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
    elif how == "cut":
        del damaged[rng.randrange(1, len(damaged)) :]
    else:
        start = rng.randrange(len(damaged))
        damaged[start : start + 16] = bytes(len(damaged[start : start + 16]))
    return bytes(damaged)
