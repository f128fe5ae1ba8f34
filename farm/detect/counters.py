# SPDX-License-Identifier: Apache-2.0
"""Counter rules: does a counter behave as the load expects?

Pure functions over (timestamp, value) points; no database. Three rules:

- returns-to-zero: after the quiesce steps the value is at most ``tolerance``;
- underflow: a gauge read as unsigned near 2^64 is a negative count, always a bug
  (checked on every ``nr_*`` field of every sample, no expectation needed);
- growth: the counter's trend during the soak (after warm-up) rises faster than the
  baseline run's on the same host and load. One sample proves nothing, so this is a
  trend test: the Theil–Sen slope (median of pairwise slopes, robust to spikes) with
  its 95% confidence interval; growth is declared only when the patched run's lower
  bound exceeds the baseline's upper bound (and zero) by more than ``min_slope_per_hour``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Points = Sequence[tuple[float, float]]

UNDERFLOW_FLOOR = 1 << 63
MIN_TREND_POINTS = 6


class ExpectationLike(Protocol):
    @property
    def counter(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def tolerance(self) -> float: ...
    @property
    def min_slope_per_hour(self) -> float: ...


@dataclass(frozen=True)
class Finding:
    """A counter that broke its rule: what a FAIL verdict quotes."""

    counter: str
    rule: str
    value: float
    message: str

    def reason(self) -> str:
        return f"counter {self.counter}: {self.message}"


@dataclass(frozen=True)
class Slope:
    per_hour: float
    low: float
    high: float
    points: int


def slope(points: Points) -> Slope | None:
    """Theil–Sen slope per hour with a 95% interval, or None with too few points."""
    if len(points) < MIN_TREND_POINTS:
        return None
    from scipy.stats import theilslopes  # scipy is heavy: only trend tests pay for it

    t0 = points[0][0]
    hours = [(t - t0) / 3600.0 for t, _ in points]
    values = [float(v) for _, v in points]
    if hours[-1] <= 0:
        return None
    result = theilslopes(values, hours, alpha=0.95)
    return Slope(float(result[0]), float(result[2]), float(result[3]), len(points))


def returns_to_zero(counter: str, final: float, tolerance: float) -> Finding | None:
    if final <= tolerance:
        return None
    return Finding(
        counter, "returns-to-zero", final, f"{final:g} after quiesce, expected <= {tolerance:g}"
    )


def underflows(readings: Iterable[Mapping[str, int]]) -> list[Finding]:
    """nr_* gauges whose unsigned value is a negative count; the worst value per field."""
    worst: dict[str, int] = {}
    for values in readings:
        for name, value in values.items():
            bare = name.rpartition(":")[2]
            if bare.startswith("nr_") and value >= UNDERFLOW_FLOOR:
                worst[name] = max(worst.get(name, 0), value)
    return [
        Finding(name, "underflow", value, f"{value} is {value - (1 << 64)} as a signed count")
        for name, value in sorted(worst.items())
    ]


def growth(
    counter: str, soak: Points, baseline: Points | None, min_slope_per_hour: float
) -> tuple[Finding | None, str | None]:
    """(finding, note): the note says why growth could not be judged."""
    mine = slope(soak)
    if mine is None:
        return None, f"{counter}: too few samples for a trend ({len(soak)})"
    if baseline is None:
        return None, f"{counter}: no baseline run on this host and load to compare with"
    theirs = slope(baseline)
    if theirs is None:
        return None, f"{counter}: baseline has too few samples ({len(baseline)})"
    bound = max(theirs.high, 0.0) + min_slope_per_hour
    if mine.low <= bound:
        return None, None
    return (
        Finding(
            counter,
            "growth",
            mine.per_hour,
            f"grows {mine.per_hour:.4g}/h (95% CI {mine.low:.4g}..{mine.high:.4g}) "
            f"vs baseline {theirs.per_hour:.4g}/h (CI up to {theirs.high:.4g})",
        ),
        None,
    )


def evaluate(
    expectations: Sequence[ExpectationLike],
    *,
    soak: Mapping[str, Points],
    final: Mapping[str, float],
    baseline: Mapping[str, Points] | None,
) -> tuple[list[Finding], list[str]]:
    """Apply a load's expectations. ``soak``/``baseline`` map counter -> post-warm-up
    points; ``final`` maps counter -> value after quiesce. Counters the kernel does not
    have are noted, not failed (a 6.1 kernel has no nr_anon_partially_mapped)."""
    findings: list[Finding] = []
    notes: list[str] = []
    for exp in expectations:
        if exp.rule == "returns-to-zero":
            if exp.counter not in final:
                notes.append(f"{exp.counter}: not reported by this kernel")
                continue
            found = returns_to_zero(exp.counter, final[exp.counter], exp.tolerance)
            findings.extend([found] if found else [])
        else:
            points = soak.get(exp.counter, [])
            if not points:
                notes.append(f"{exp.counter}: not reported by this kernel")
                continue
            base = baseline.get(exp.counter) if baseline is not None else None
            found, note = growth(exp.counter, points, base, exp.min_slope_per_hour)
            findings.extend([found] if found else [])
            notes.extend([note] if note else [])
    return findings, notes
