# SPDX-License-Identifier: Apache-2.0
"""Races that SQLite hides and PostgreSQL has: several controllers and workers writing
one run at the same moment. SQLite serialises every writer on the whole file (and a
farm on SQLite has one controller); PostgreSQL lets them interleave row by row, so
each place that claims a row must lock it. Real threads, each with its own
connections, released together by a barrier; several rounds, as races are seldom hit
at the first try. (Real workers on PostgreSQL: test_reliability.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest
import redis
from dbfixtures import Postgres
from sqlalchemy import select, update

from farm.config import FarmConfig
from farm.hosts import get_host
from farm.scheduler import lifecycle
from farm.scheduler.api import BISECTION_LOCK, cancel_run, queue_run
from farm.scheduler.leases import bump_fence
from farm.scheduler.reconciler import redrive
from farm.store import Store
from farm.store.runs import Run, RunKind, RunState
from farm.store.samples import HostState, RunProgress


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    """PostgreSQL only: these races cannot happen on SQLite."""
    name = postgres.create(Postgres.TEMPLATE)
    yield postgres.cluster.url(name)
    postgres.drop(name)


def new_run(config: FarmConfig, store: Store) -> int:
    return queue_run(
        config,
        store,
        kind=RunKind.PATCHED,
        host="laptop",
        commit="c" * 40,
        load="thp-split",
        soak_seconds=60,
        details={"kernel": "running"},
        send=False,
    )


def sent_to(sent: list[int], run_id: int, host: str, tick: int, delay: float) -> bool:
    """A schedule() that records the runs it is asked to queue."""
    sent.append(run_id)
    return True


def at_once(*actions: Callable[[], object]) -> list[object]:
    """Run each action in its own thread, released together; their results."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = actions[n]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results


def test_two_reconcilers_at_once_queue_each_overdue_run_once(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    """Two controllers' beats re-drive the same overdue runs: each run is queued by
    one of them, never by both (a doubled step is dropped by its tick, but a doubled
    queue is wasted work at every beat of a large farm)."""
    runs = [new_run(config, store) for _ in range(20)]
    controllers = [Store(store.url), Store(store.url)]
    for round_ in range(5):
        with store.session() as session:
            # each round a new step of every run is overdue
            session.execute(update(RunProgress).values(due_at=time.time() - 120, tick=round_))
        sent: list[int] = []
        record = partial(sent_to, sent)
        queued = at_once(*(partial(redrive, c, config, broker, record) for c in controllers))

        assert sorted(sent) == runs, f"round {round_}"
        assert sum(q for q in queued if isinstance(q, int)) == len(runs)
    for controller in controllers:
        controller.dispose()


def test_the_reconciler_leaves_alone_a_run_whose_step_is_committing(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    """A worker commits a step while the beat looks: the beat neither waits for the
    worker nor queues the step the worker is finishing."""
    committing, idle = new_run(config, store), new_run(config, store)
    with store.session() as session:
        session.execute(update(RunProgress).values(due_at=time.time() - 120))
    beat = Store(store.url)
    sent: list[int] = []

    with store.session() as worker:  # the step's commit: its tick UPDATE holds the row
        worker.execute(
            update(RunProgress)
            .where(RunProgress.run_id == committing, RunProgress.tick == 0)
            .values(tick=1, due_at=time.time() + 10)
        )
        queued = redrive(beat, config, broker, partial(sent_to, sent))

    assert (queued, sent) == (1, [idle])
    beat.dispose()


def test_a_cancel_racing_the_step_that_claims_the_host_never_leaves_the_host_held(
    config: FarmConfig, store: Store
) -> None:
    """`farm cancel` of a queued run while a worker commits its first step (which
    claims the host): either the cancel wins (the run is cancelled, the host stays
    free) or the step does (the run holds the host and stops at its next step). Never
    a cancelled run holding the host, which would keep every later run off it."""
    ctx = lifecycle.Ctx(config, store, get_host(config, "laptop"), bump_fence(store, "laptop"))
    canceller = Store(store.url)
    for round_ in range(10):
        run_id = new_run(config, store)
        with store.session() as session:
            session.execute(update(HostState).values(run_id=None))
        snap = lifecycle.snapshot(store, run_id)
        assert snap is not None
        outcome = lifecycle.STEPS[RunState.QUEUED](ctx, snap)

        at_once(
            partial(lifecycle.commit, ctx, snap, outcome), partial(cancel_run, canceller, run_id)
        )

        with store.session() as session:
            run = session.get(Run, run_id)
            holder = session.scalar(select(HostState.run_id).where(HostState.host == "laptop"))
            progress = session.get(RunProgress, run_id)
            assert run is not None and progress is not None
            if run.state == RunState.CANCELLED:
                assert holder is None, f"round {round_}: a cancelled run holds the host"
            else:
                assert (run.state, holder) == (RunState.BOOTING, run_id), f"round {round_}"
                assert progress.cancel_requested, f"round {round_}: the cancel was lost"
    canceller.dispose()


def test_a_bisection_advanced_by_one_beat_is_skipped_by_another_until_released(
    store: Store,
) -> None:
    """Two controllers' beats tick bisections: one plans and queues a bisection's runs
    while the other skips it (else both would queue the same runs from the same
    evidence); other bisections are not held up."""
    other = Store(store.url)
    with (
        store.exclusive(BISECTION_LOCK, 7) as first,
        other.exclusive(BISECTION_LOCK, 7) as second,
        other.exclusive(BISECTION_LOCK, 8) as another,
    ):
        assert (first, second, another) == (True, False, True)
    with other.exclusive(BISECTION_LOCK, 7) as later:
        assert later
    other.dispose()
