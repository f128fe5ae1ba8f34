# SPDX-License-Identifier: Apache-2.0
"""Human-friendly units on the command line: soak durations like ``12h`` or ``1h30m``."""

from __future__ import annotations

import re

from farm.errors import UserError

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``12h``, ``90m``, ``30s``, ``1h30m``, ``2d``; a bare number: seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif _WHOLE.fullmatch(value):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(value))
    else:
        raise UserError(
            f"cannot read duration {text!r}",
            hint="write it like 12h, 90m, 30s or 1h30m (units d, h, m, s)",
        )
    if seconds <= 0:
        raise UserError(f"duration {text!r} must be longer than zero", hint="for example 12h")
    return seconds


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration for display: 5400 -> ``1h30m``."""
    remaining = round(seconds)
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
