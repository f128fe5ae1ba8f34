# SPDX-License-Identifier: Apache-2.0
"""The parser against syzkaller's real console logs with the titles syzbot gives them."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from farm.detect.crash import Crash, CrashStream, parse

REPORTS = Path(__file__).resolve().parents[1] / "fixtures/corpus/syzkaller-linux/report"
KNOWN = Path(__file__).with_name("corpus_known_mismatches.txt")


@dataclass(frozen=True)
class Expected:
    title: str
    corrupted: bool
    body: bytes


def _read(path: Path) -> Expected:
    head, _, body = path.read_bytes().partition(b"\n\n")
    fields: dict[str, str] = {}
    for line in head.decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return Expected(fields.get("TITLE", ""), fields.get("CORRUPTED") == "Y", body)


def _known(kind: str) -> set[str]:
    rows = (line.split() for line in KNOWN.read_text().splitlines() if not line.startswith("#"))
    return {row[0] for row in rows if row and row[1] == kind}


FILES = sorted((p.name for p in REPORTS.iterdir()), key=int)


@cache
def expected(name: str) -> Expected:
    return _read(REPORTS / name)


@cache
def crashes(name: str) -> tuple[Crash, ...]:
    return tuple(parse(expected(name).body))


CRASH_FILES = [name for name in FILES if expected(name).title]
QUIET_FILES = [name for name in FILES if not expected(name).title]


def test_the_corpus_is_there() -> None:
    assert len(CRASH_FILES) > 500 and len(QUIET_FILES) > 10


@pytest.mark.parametrize("name", CRASH_FILES)
def test_first_crash_gets_syzbots_title(name: str) -> None:
    found = crashes(name)
    title = found[0].title if found else None
    if name in _known("title"):
        assert title != expected(name).title, f"{name} matches now: drop it from {KNOWN.name}"
    else:
        assert title == expected(name).title


@pytest.mark.parametrize("name", CRASH_FILES)
def test_corrupted_flag_agrees(name: str) -> None:
    found = crashes(name)
    if not found or name in _known("title"):
        pytest.skip("title differs; the flag is about another report")
    agrees = found[0].corrupted == expected(name).corrupted
    assert agrees != (name in _known("corrupted")), f"{name}: corrupted={found[0].corrupted}"


@pytest.mark.parametrize("name", QUIET_FILES)
def test_logs_without_a_crash_report_none(name: str) -> None:
    assert [c.title for c in crashes(name)] == []


def test_aggregate_rates_meet_the_targets() -> None:
    matched = sum(
        bool(crashes(n)) and crashes(n)[0].title == expected(n).title for n in CRASH_FILES
    )
    agreed = sum(
        bool(crashes(n)) and crashes(n)[0].corrupted == expected(n).corrupted for n in CRASH_FILES
    )
    false_reports = sum(bool(crashes(n)) for n in QUIET_FILES)
    assert matched / len(CRASH_FILES) >= 0.90
    assert agreed / len(CRASH_FILES) >= 0.95
    assert false_reports == 0


def test_streaming_line_by_line_agrees_with_batch_on_every_log() -> None:
    for name in FILES:
        stream = CrashStream()
        text = expected(name).body.decode("utf-8", errors="replace")
        lines = io.StringIO(text, newline="\n")  # as a console file is read
        streamed = [c for line in lines for c in stream.feed(line)]
        streamed += stream.flush()
        # The stream emits a report when it ends; parse() orders them by their start.
        assert sorted(streamed, key=lambda c: c.start_line) == list(crashes(name)), name
