# SPDX-License-Identifier: Apache-2.0
"""Expected hours left: the rest of a bisection simulated from the engine's posterior."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from farm.bisect.engine import Engine, Evidence, Outcome, Settings
from farm.bisect.forecast import draw_truth, hours_left

N = 10


def started() -> Engine:
    """Just after the failed run: one crash of the full series after 11.6 h."""
    engine = Engine(N)
    engine.record(Evidence(N, "workstation", "b0", 11.6, Outcome.MATCHING))
    return engine


def narrowed() -> Engine:
    """Patch 6 or 7: kernel 7 crashed twice, kernel 5 stayed up two days."""
    engine = started()
    engine.record(Evidence(N, "laptop", "b1", 6.0, Outcome.MATCHING))
    engine.record(Evidence(7, "workstation", "b2", 3.0, Outcome.MATCHING))
    engine.record(Evidence(7, "laptop", "b3", 9.0, Outcome.MATCHING))
    engine.record(Evidence(5, "laptop", "b4", 48.0, Outcome.CLEAN))
    return engine


def test_worlds_are_drawn_from_what_the_evidence_allows() -> None:
    engine, rng = narrowed(), np.random.default_rng(1)
    worlds = [draw_truth(engine, rng) for _ in range(200)]
    culprits = Counter(w.culprit for w in worlds)
    # a matching crash on kernel 7 rules out patches 8..10; 48 clean hours make 1..5 unlikely
    assert set(culprits) <= set(range(8)) | {N + 1}
    assert culprits[6] + culprits[7] >= 150
    assert all(w.shape in engine.settings.prior.shapes and w.scale > 0 for w in worlds)


def test_a_narrowed_bisection_has_fewer_hours_left_than_a_fresh_one() -> None:
    fresh, near = hours_left(started(), hosts=2, rollouts=6), hours_left(narrowed(), 2, 6)
    assert near.mean_hours < fresh.mean_hours
    for f in (fresh, near):
        assert 0 < f.median_hours <= f.p90_hours and f.rollouts == 6


def test_the_forecast_is_the_same_for_the_same_seed_and_leaves_the_engine_alone() -> None:
    engine = narrowed()
    log = list(engine.log)
    assert hours_left(engine, 2, 4, seed=5) == hours_left(engine, 2, 4, seed=5)
    assert engine.log == log


def test_a_decided_bisection_has_no_hours_left() -> None:
    engine = narrowed()
    engine.record(Evidence(6, "workstation", "b5", 2.0, Outcome.MATCHING))
    engine.record(Evidence(5, "laptop", "b6", 150.0, Outcome.CLEAN))
    assert engine.decide().culprit == 6
    assert hours_left(engine, 2).mean_hours == 0.0


def test_a_counter_bisection_is_not_forecast() -> None:
    # the simulated farm produces crashes only: a counter's bisection would never end there
    engine = Engine(N, Settings(kind="counter"))
    engine.record(Evidence(N, "workstation", "r1", 2.0, Outcome.COUNTER_FAIL))
    with pytest.raises(ValueError, match="only a crash bisection"):
        hours_left(engine, hosts=2)
