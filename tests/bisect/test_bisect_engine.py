# SPDX-License-Identifier: Apache-2.0
"""The bisection engine on hand-made evidence: what each kind of evidence does to the
posterior over the first bad patch, when it stops, and what it asks to test next."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.bisect.engine import Engine, Evidence, FreeHost, InFlight, Outcome, Settings

N = 12

outcomes = st.sampled_from(
    [Outcome.CLEAN, Outcome.MATCHING, Outcome.UNRELATED, Outcome.COUNTER_FAIL, Outcome.COUNTER_PASS]
)
evidence = st.lists(
    st.builds(
        Evidence,
        kernel=st.integers(0, N),
        host=st.sampled_from(["laptop", "workstation"]),
        boot=st.text("abcdef0123456789", min_size=4, max_size=4),
        uptime_hours=st.floats(0.0, 200.0),
        outcome=outcomes,
    ),
    max_size=12,
)


def engine_with(evs: list[Evidence], n: int = N) -> Engine:
    engine = Engine(n)
    for i, ev in enumerate(evs):
        # unique boots: the same (host, boot) on two kernels is refused, tested below
        engine.record(Evidence(ev.kernel, ev.host, f"{ev.boot}-{i}", ev.uptime_hours, ev.outcome))
    return engine


def first_crash() -> Evidence:
    return Evidence(N, "workstation", "b0", 11.6, Outcome.MATCHING)


@settings(max_examples=60, deadline=None)
@given(evidence)
def test_the_posterior_is_a_probability_distribution(evs: list[Evidence]) -> None:
    p = engine_with(evs).posterior()
    assert p.shape == (N + 2,)
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0)
    patches, none = engine_with(evs).patch_posterior()
    assert sum(patches) + none == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(evidence, st.integers(0, N), st.floats(0.5, 100.0))
def test_more_clean_hours_on_a_kernel_never_raise_its_badness(
    evs: list[Evidence], kernel: int, hours: float
) -> None:
    engine = engine_with([first_crash(), *evs])
    before = engine.p_bad(kernel)
    engine.record(Evidence(kernel, "laptop", "fresh-boot", hours, Outcome.CLEAN))
    assert engine.p_bad(kernel) <= before + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(1, N), st.floats(0.5, 48.0))
def test_a_matching_crash_at_k_rules_out_every_patch_after_k(k: int, hours: float) -> None:
    # first-bad-patch semantics: kernel k (patches 1..k applied) crashing means culprit <= k
    engine = engine_with([first_crash()])
    engine.record(Evidence(k, "laptop", "b1", hours, Outcome.MATCHING))
    patches, _ = engine.patch_posterior()
    # only a mis-attributed title (the small background rate) could explain it otherwise:
    # from equal odds before, each later patch drops to under 1/20 of any earlier one
    assert max(patches[k:], default=0.0) < 0.05 * min(patches[:k])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, N - 1), st.floats(0.5, 48.0))
def test_an_unrelated_crash_barely_moves_the_posterior(k: int, hours: float) -> None:
    unrelated = engine_with([first_crash()])
    unrelated.record(Evidence(k, "laptop", "b1", hours, Outcome.UNRELATED))
    clean = engine_with([first_crash()])
    clean.record(Evidence(k, "laptop", "b1", hours, Outcome.CLEAN))
    matching = engine_with([first_crash()])
    matching.record(Evidence(k, "laptop", "b1", hours, Outcome.MATCHING))
    # exactly as informative as the clean uptime before it, nothing more
    assert unrelated.posterior() == pytest.approx(clean.posterior())
    assert not np.allclose(matching.posterior(), clean.posterior(), atol=0.01)


def test_later_reports_of_the_same_boot_supersede_earlier_ones() -> None:
    once = engine_with([first_crash()])
    once.record(Evidence(3, "laptop", "b1", 20.0, Outcome.CLEAN))
    updates = engine_with([first_crash()])
    for h in (5.0, 10.0, 20.0):
        updates.record(Evidence(3, "laptop", "b1", h, Outcome.CLEAN))
    assert updates.posterior() == pytest.approx(once.posterior())


def test_rising_hazard_makes_one_long_boot_worth_more_than_many_short_ones() -> None:
    def p_bad_after(boots: list[float]) -> float:
        engine = Engine(N, Settings())
        engine.record(first_crash())
        engine.record(Evidence(N, "laptop", "r", 9.0, Outcome.MATCHING))
        for i, h in enumerate(boots):
            engine.record(Evidence(6, "laptop", f"b{i}", h, Outcome.CLEAN))
        return engine.p_bad(6)

    assert p_bad_after([20.0]) < p_bad_after([2.0] * 10)


def test_the_same_boot_on_another_kernel_is_refused() -> None:
    engine = Engine(N)
    engine.record(first_crash())
    with pytest.raises(ValueError, match="was kernel"):
        engine.record(Evidence(3, "workstation", "b0", 20.0, Outcome.CLEAN))


def test_untestable_kernels_are_never_planned() -> None:
    engine = engine_with([first_crash(), Evidence(N, "laptop", "r", 5.0, Outcome.MATCHING)])
    for k in range(1, N):
        if k != 9:
            engine.record(Evidence(k, "laptop", f"u{k}", 0.0, Outcome.UNTESTABLE))
    tests = engine.plan([FreeHost("laptop"), FreeHost("workstation")], [])
    assert {t.kernel for t in tests} <= {0, 9, N}


def test_it_first_reproduces_the_failing_kernel_on_every_free_host() -> None:
    engine = engine_with([first_crash()])
    tests = engine.plan([FreeHost("laptop"), FreeHost("workstation")], [])
    assert [(t.host, t.kernel, t.reboot) for t in tests] == [
        ("laptop", N, True),
        ("workstation", N, True),
    ]


def test_after_reproducing_two_hosts_get_different_kernels_inside_the_series() -> None:
    engine = engine_with([first_crash(), Evidence(N, "laptop", "r", 7.0, Outcome.MATCHING)])
    tests = engine.plan([FreeHost("laptop"), FreeHost("workstation")], [])
    kernels = [t.kernel for t in tests]
    assert len(set(kernels)) == 2
    assert all(0 < k < N for k in kernels)
    assert all(t.info_per_hour > 0 and t.hours > 0 for t in tests)


def test_runs_on_a_kernel_known_bad_become_pointless() -> None:
    engine = engine_with([first_crash(), Evidence(N, "laptop", "r", 7.0, Outcome.MATCHING)])
    running = [InFlight("workstation", 8, "w1", 3.0, 12.0), InFlight("laptop", 5, "l1", 3.0, 12.0)]
    assert engine.pointless(running) == []
    engine.record(Evidence(6, "spare", "s1", 4.0, Outcome.MATCHING))
    assert [r.kernel for r in engine.pointless(running)] == [8]


def hunt(culprit: int, rate_hours: float = 10.0) -> Engine:
    """Evidence a careful human would collect: crashes from the culprit up, long clean
    boots below it."""
    engine = engine_with([first_crash(), Evidence(N, "laptop", "r", 7.0, Outcome.MATCHING)])
    for k in range(culprit, N, 2):
        engine.record(Evidence(k, "laptop", f"c{k}", rate_hours, Outcome.MATCHING))
    for i in range(4):
        engine.record(Evidence(culprit - 1, "workstation", f"g{i}", 40.0, Outcome.CLEAN))
    return engine


def test_it_stops_with_the_culprit_once_confident_and_checked_both_sides() -> None:
    decision = hunt(7).decide()
    assert decision.done and decision.culprit == 7
    assert decision.confidence >= 0.95
    assert decision.credible_set == [7]


def test_it_does_not_stop_without_a_failure_on_the_top_patch() -> None:
    engine = engine_with([first_crash(), Evidence(N, "laptop", "r", 7.0, Outcome.MATCHING)])
    engine.record(Evidence(8, "laptop", "c8", 6.0, Outcome.MATCHING))
    for i in range(6):
        engine.record(Evidence(6, "workstation", f"g{i}", 48.0, Outcome.CLEAN))
    decision = engine.decide()
    assert not decision.done
    assert set(decision.credible_set) >= {7, 8}


def test_at_the_budget_it_reports_the_credible_set() -> None:
    engine = engine_with([first_crash(), Evidence(N, "laptop", "r", 7.0, Outcome.MATCHING)])
    engine.record(Evidence(8, "laptop", "c8", 6.0, Outcome.MATCHING))
    decision = engine.decide(budget_exhausted=True)
    assert decision.done and decision.culprit is None
    assert 8 in decision.credible_set and decision.reason == "budget exhausted"


def test_a_crash_that_never_reproduces_never_names_a_patch() -> None:
    engine = engine_with([first_crash()])
    before = engine.decide().no_culprit
    for i in range(10):
        engine.record(Evidence(N, "laptop", f"n{i}", 48.0, Outcome.CLEAN))
    decision = engine.decide()
    assert not decision.done and decision.no_culprit > 2 * before
    at_budget = engine.decide(budget_exhausted=True)
    assert at_budget.done and at_budget.culprit is None and len(at_budget.credible_set) > N // 2


def test_counter_evidence_bisects_a_leak_with_its_error_rates() -> None:
    engine = Engine(N, Settings(kind="counter"))
    fail, ok = Outcome.COUNTER_FAIL, Outcome.COUNTER_PASS
    evs = [(N, fail), (N, fail), (6, ok), (6, ok), (9, fail), (7, ok), (7, ok), (8, fail)]
    evs += [(8, fail), (7, ok)]
    for i, (k, outcome) in enumerate(evs):
        engine.record(Evidence(k, "laptop", f"b{i}", 2.0, outcome))
    decision = engine.decide()
    assert decision.culprit == 8 and decision.done
    assert engine.plan([FreeHost("laptop")], [])[0].hours == Settings().counter_hours


def test_bad_evidence_is_refused_with_the_value() -> None:
    engine = Engine(N)
    with pytest.raises(ValueError, match=r"kernel 13 is outside 0\.\.12"):
        engine.record(Evidence(13, "laptop", "b", 1.0, Outcome.CLEAN))
    with pytest.raises(ValueError, match="-1"):
        engine.record(Evidence(1, "laptop", "b", -1.0, Outcome.CLEAN))
