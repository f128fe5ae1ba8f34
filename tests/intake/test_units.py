# SPDX-License-Identifier: Apache-2.0
"""Durations on the command line."""

from __future__ import annotations

import pytest

from farm.errors import UserError
from farm.units import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("12h", 43200), ("90m", 5400), ("30s", 30), ("1h30m", 5400), ("2d", 172800), ("45", 45)],
)
def test_durations_read_like_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "12x", "1h 30m", "-5m", "0s", "12 hours"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UserError, match="12h"):
        parse_duration(text)


def test_format_is_the_inverse() -> None:
    assert format_duration(5400) == "1h30m"
    assert parse_duration(format_duration(93784)) == 93784
