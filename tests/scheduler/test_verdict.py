# SPDX-License-Identifier: Apache-2.0
"""A finished run's verdict from what the store holds: the counters of a run that
crashed are judged on the trend they showed while the load ran."""

from __future__ import annotations

import datetime as dt

from farm.ending import Cause, RunEnding, SelftestTally, SoakEvents, Verdict
from farm.loads import Expectation, Load
from farm.scheduler.verdict import decide
from farm.soak.sampler import Reading
from farm.soak.selftests import Result
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import KeyCache, add_samples

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
LOAD = Load(
    name="thp",
    description="test load",
    script="true",
    duration=60,
    expect=[
        Expectation(counter="nr_anon_transparent_hugepages", rule="returns-to-zero"),
        Expectation(counter="nr_anon_transparent_hugepages", rule="no-growth"),
    ],
)


def run_with(store: Store, kind: RunKind, values: list[int], *, quiesced: int | None) -> int:
    """A run on laptop sampled every 5 s with these counter values (and a quiesced
    reading when given)."""
    with store.session() as session:
        run = Run(
            kind=kind,
            upto=0 if kind == RunKind.BASELINE else 7,
            commit="c" * 40,
            host="laptop",
            load="thp",
            soak_seconds=60.0,
            state=RunState.DONE,
            verdict=Verdict.PASS if kind == RunKind.BASELINE else None,
            load_started_at=T0,
            ended_at=T0 + dt.timedelta(seconds=5 * len(values)),
        )
        session.add(run)
        session.flush()
        start = T0.timestamp()
        readings = [("soak", start + 5 * i, v) for i, v in enumerate(values)] + (
            [("quiesced", start + 5 * len(values), quiesced)] if quiesced is not None else []
        )
        batch = [
            (
                "laptop",
                run.id,
                Reading(
                    ts,
                    phase,
                    "boot-1",
                    ts - start + 20,
                    0,
                    {"nr_anon_transparent_hugepages": v},
                    {},
                ),
            )
            for phase, ts, v in readings
        ]
        add_samples(session, KeyCache(), batch)
        return run.id


def judge(store: Store, run_id: int, crash: str | None = None) -> tuple[Verdict, list[str]]:
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        if crash:
            session.add(
                Crash(
                    run_id=run_id,
                    host="laptop",
                    title=crash,
                    alt_titles=[],
                    kind="BUG",
                    signature="sig",
                    report=crash,
                )
            )
            session.flush()
        verdict, ending = decide(session, run, LOAD, SoakEvents())
        return verdict, ending.reasons


def test_a_leak_seen_before_the_crash_fails_its_counter_too(store: Store) -> None:
    run_with(store, RunKind.BASELINE, [3, 1, 2, 3, 1, 2, 3, 1, 2, 2], quiesced=0)
    patched = run_with(store, RunKind.PATCHED, [5, 60, 130, 170, 240, 300, 350, 420], quiesced=None)

    verdict, reasons = judge(store, patched, crash="BUG: corrupted list in deferred_split_scan")

    assert verdict == Verdict.FAIL
    assert reasons[0] == "crash: BUG: corrupted list in deferred_split_scan"
    assert reasons[1].startswith("counter nr_anon_transparent_hugepages: grows ")
    assert len(reasons) == 2  # no quiesce after a crash: returns-to-zero is not judged


def test_a_crash_with_flat_counters_fails_on_the_crash_alone(store: Store) -> None:
    run_with(store, RunKind.BASELINE, [3, 1, 2, 3, 1, 2, 3, 1, 2, 2], quiesced=0)
    patched = run_with(store, RunKind.PATCHED, [2, 3, 1, 2, 3, 1, 2, 3], quiesced=None)

    assert judge(store, patched, crash="BUG: x") == (Verdict.FAIL, ["crash: BUG: x"])


def test_a_clean_end_judges_the_value_after_quiesce(store: Store) -> None:
    run_with(store, RunKind.BASELINE, [3, 1, 2, 3, 1, 2, 3, 1, 2, 2], quiesced=0)
    patched = run_with(store, RunKind.PATCHED, [2, 3, 1, 2, 3, 1, 2, 3], quiesced=4)

    verdict, reasons = judge(store, patched)

    assert (verdict, reasons) == (
        Verdict.FAIL,
        ["counter nr_anon_transparent_hugepages: 4 after quiesce, expected <= 0"],
    )


def selftests_verdict(store: Store, results: list[Result]) -> tuple[Verdict, RunEnding]:
    run_with(store, RunKind.BASELINE, [3, 1, 2, 3, 1, 2, 3, 1, 2, 2], quiesced=0)
    patched = run_with(store, RunKind.PATCHED, [2, 3, 1, 2, 3, 1, 2, 3], quiesced=0)
    with store.session() as session:
        run = session.get(Run, patched)
        assert run is not None
        return decide(session, run, LOAD, SoakEvents(), selftests=results)


def test_selftests_that_pass_leave_a_pass_with_their_tally(store: Store) -> None:
    results = [Result(r, "selftests: mm: madv_populate", "ok", "") for r in (1, 2)]
    verdict, ending = selftests_verdict(store, results)
    assert verdict == Verdict.PASS
    assert ending.selftests == SelftestTally(rounds=2, ok=2, skipped=0, failed=0)


def test_a_failing_selftest_fails_the_run_naming_the_test(store: Store) -> None:
    results = [Result(1, "selftests: mm: khugepaged", "fail", "exit=1")]
    verdict, ending = selftests_verdict(store, results)
    assert verdict == Verdict.FAIL
    assert [f.test for f in ending.of(Cause.SELFTEST)] == ["selftests: mm: khugepaged"]


def test_a_selftest_the_host_cannot_run_is_infra_not_the_kernels_fault(store: Store) -> None:
    results = [Result(1, "selftests: mm: soft-dirty", "skip", "SKIP")]
    verdict, ending = selftests_verdict(store, results)
    assert verdict == Verdict.INFRA
    assert [f.cause for f in ending.findings] == [Cause.INFRA]
