# SPDX-License-Identifier: Apache-2.0
"""Scoring intake on the real-mail corpus (tests/fixtures/mail): farm's answer per file
against the answer written down in expected.toml before farm ever read the file."""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import UserError
from farm.intake.mbox import read_mails
from farm.intake.series import ParsedSeries, group_series

CORPUS = Path(__file__).parents[1] / "fixtures" / "mail"


@dataclass(frozen=True)
class Verdict:
    path: str
    category: str
    right: bool
    why: str


def expectations() -> list[dict[str, Any]]:
    return list(tomllib.loads((CORPUS / "expected.toml").read_text())["file"])


def answer(path: Path) -> tuple[str, ParsedSeries | None, str]:
    """(outcome, the series farm names, farm's message)."""
    try:
        series = group_series(read_mails(path), source=path.name)
    except UserError as error:
        return _refusal(error.message), None, error.message
    try:
        series.check_complete(allow_incomplete=False)
    except UserError as error:
        return "incomplete", series, error.message
    return "series", series, "; ".join(series.warnings)


def _refusal(message: str) -> str:
    if "is a pull request" in message:
        return "pull-request"
    if "no patches among" in message or "no mail messages found" in message:
        return "no-patches"
    return "error"


def judge(expected: dict[str, Any]) -> Verdict:
    outcome, series, message = answer(CORPUS / expected["path"])
    problems = [] if outcome == expected["outcome"] else [f"{outcome}: {message}"]
    if series is not None and not problems:
        problems += _compare(expected, series)
    why = "; ".join(problems)
    return Verdict(expected["path"], expected["category"], not problems, why)


def _compare(expected: dict[str, Any], series: ParsedSeries) -> list[str]:
    got: dict[str, Any] = {
        "version": series.version,
        "total": series.total,
        "missing": series.missing,
        "patches": [p.mail.message_id for p in series.patches],
        "subjects": [p.subject for p in series.patches],
        "subject": series.patches[0].subject if series.patches else None,
        "cover": series.cover.message_id if series.cover else None,
    }
    return [
        f"{k} {got[k]!r} != {expected[k]!r}" for k in got if k in expected and got[k] != expected[k]
    ]


def table(verdicts: list[Verdict]) -> list[tuple[str, int, int]]:
    """(category, right, files) per category, then the total."""
    by: dict[str, list[bool]] = defaultdict(list)
    for v in verdicts:
        by[v.category].append(v.right)
    rows = [(c, sum(r), len(r)) for c, r in sorted(by.items())]
    return [*rows, ("all", sum(v.right for v in verdicts), len(verdicts))]
