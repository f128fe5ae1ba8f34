# SPDX-License-Identifier: Apache-2.0
"""What `make demo` waits for between polls: each state the store can be in, read back
as a typed value (issue 20: a bool once passed for a bisection id)."""

from __future__ import annotations

import datetime as dt

from farm.demo import Bisecting, Soaking, _waiting_for
from farm.ending import Verdict
from farm.store import Store
from farm.store.base import utcnow
from farm.store.bisect import Bisection, BisectState
from farm.store.runs import Run, RunKind, RunState


def add_run(
    store: Store,
    *,
    kind: RunKind,
    state: RunState,
    verdict: Verdict | None = None,
    ended_ago: float | None = None,
) -> int:
    with store.session() as session:
        run = Run(
            kind=kind,
            upto=7 if kind == RunKind.PATCHED else 0,
            commit="c" * 40,
            host="laptop",
            load="thp-split",
            soak_seconds=240.0,
            state=state,
            verdict=verdict,
            ended_at=None if ended_ago is None else utcnow() - dt.timedelta(seconds=ended_ago),
        )
        session.add(run)
        session.flush()
        return run.id


def add_bisection(store: Store, run_id: int, state: BisectState) -> int:
    with store.session() as session:
        b = Bisection(run_id=run_id, regression="nr_anon_transparent_hugepages", state=state)
        session.add(b)
        session.flush()
        return b.id


def test_runs_in_flight_are_waited_for(store: Store) -> None:
    run = add_run(store, kind=RunKind.PATCHED, state=RunState.SOAKING)
    assert _waiting_for(store, [run]) == Soaking()


def test_an_open_bisection_is_waited_for_by_its_id(store: Store) -> None:
    run = add_run(
        store, kind=RunKind.PATCHED, state=RunState.DONE, verdict=Verdict.FAIL, ended_ago=1
    )
    bid = add_bisection(store, run, BisectState.RUNNING)
    assert _waiting_for(store, [run]) == Bisecting(bid)


def test_a_failed_patched_run_whose_bisection_is_not_requested_yet_keeps_the_demo_waiting(
    store: Store,
) -> None:
    """The case that once returned True, which the demo then used as a bisection id."""
    run = add_run(
        store, kind=RunKind.PATCHED, state=RunState.DONE, verdict=Verdict.FAIL, ended_ago=5
    )
    waiting = _waiting_for(store, [run])
    assert waiting == Soaking()
    assert not isinstance(waiting, bool)


def test_a_failure_no_bisection_took_up_for_a_minute_ends_the_wait(store: Store) -> None:
    run = add_run(
        store, kind=RunKind.PATCHED, state=RunState.DONE, verdict=Verdict.FAIL, ended_ago=120
    )
    assert _waiting_for(store, [run]) is None


def test_finished_runs_and_a_finished_bisection_end_the_wait(store: Store) -> None:
    base = add_run(
        store, kind=RunKind.BASELINE, state=RunState.DONE, verdict=Verdict.PASS, ended_ago=1
    )
    run = add_run(
        store, kind=RunKind.PATCHED, state=RunState.DONE, verdict=Verdict.FAIL, ended_ago=1
    )
    add_bisection(store, run, BisectState.DONE)
    assert _waiting_for(store, [base, run]) is None
