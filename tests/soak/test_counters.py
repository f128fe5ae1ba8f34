# SPDX-License-Identifier: Apache-2.0
"""Counter rules on real-shaped numbers: zero after quiesce, underflow, trend vs baseline."""

from __future__ import annotations

import random

from farm.detect.counters import evaluate, growth, returns_to_zero, slope, underflows
from farm.loads import Expectation

HOUR = 3600.0


def leak(
    per_hour: float, hours: float = 2, every: float = 60, noise: float = 50
) -> list[tuple[float, float]]:
    """A counter sampled every minute that grows ``per_hour`` with spiky noise."""
    rng = random.Random(7)
    n = int(hours * HOUR / every)
    return [
        (i * every, max(0.0, per_hour * i * every / HOUR + rng.uniform(-noise, noise)))
        for i in range(n)
    ]


def test_the_laptop_story_a_partially_mapped_leak_fails_against_a_flat_baseline() -> None:
    patched, baseline = leak(per_hour=6500), leak(per_hour=0)
    expectations = [
        Expectation(counter="nr_anon_partially_mapped", rule="returns-to-zero"),
        Expectation(counter="nr_anon_partially_mapped", rule="no-growth"),
    ]

    findings, notes = evaluate(
        expectations,
        soak={"nr_anon_partially_mapped": patched},
        final={"nr_anon_partially_mapped": 78299},
        baseline={"nr_anon_partially_mapped": baseline},
    )

    assert notes == []
    assert next(f.reason() for f in findings) == (
        "counter nr_anon_partially_mapped: 78299 after quiesce, expected <= 0"
    )
    assert findings[1].rule == "growth" and 6000 < findings[1].value < 7000
    assert "vs baseline" in findings[1].message


def test_noise_around_a_level_is_not_growth() -> None:
    found, note = growth("nr_anon", leak(per_hour=0, noise=400), leak(per_hour=0), 0.0)
    assert (found, note) == (None, None)


def test_growth_as_fast_as_the_baselines_is_not_a_regression() -> None:
    found, _ = growth("pgfault", leak(per_hour=5000), leak(per_hour=5000), 0.0)
    assert found is None


def test_growth_needs_a_baseline_and_enough_samples_and_says_why_not() -> None:
    assert growth("nr_x", leak(100), None, 0.0) == (
        None,
        "nr_x: no baseline run on this host and load to compare with",
    )
    assert growth("nr_x", leak(100)[:3], leak(0), 0.0)[1] == "nr_x: too few samples for a trend (3)"


def test_theil_sen_ignores_a_single_spike() -> None:
    points = [(i * 60.0, 100.0) for i in range(30)]
    points[15] = (900.0, 10_000_000.0)
    fitted = slope(points)
    assert fitted is not None and fitted.per_hour == 0.0


def test_a_negative_count_read_as_unsigned_is_an_underflow() -> None:
    samples = [{"nr_free_pages": 1000, "nr_isolated_anon": 0}, {"nr_isolated_anon": 2**64 - 3}]
    [finding] = underflows(samples)
    assert (finding.counter, finding.rule) == ("nr_isolated_anon", "underflow")
    assert finding.message == f"{2**64 - 3} is -3 as a signed count"
    assert underflows([{"pgfault": 2**63 + 5}]) == []  # event counters may be huge


def test_returns_to_zero_honours_the_tolerance_and_missing_counters_are_notes() -> None:
    assert returns_to_zero("nr_x", 3, 5) is None
    findings, notes = evaluate(
        [Expectation(counter="nr_anon_partially_mapped", rule="returns-to-zero")],
        soak={},
        final={},
        baseline=None,
    )
    assert findings == [] and notes == ["nr_anon_partially_mapped: not reported by this kernel"]
