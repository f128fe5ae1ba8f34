# SPDX-License-Identifier: Apache-2.0
"""The reconciler re-drives runs whose next step is overdue, from the database alone."""

from __future__ import annotations

import time

from sqlalchemy import update

from farm.config import FarmConfig
from farm.scheduler.api import cancel_run, queue_run
from farm.scheduler.reconciler import redrive
from farm.store import Store
from farm.store.runs import RunKind
from farm.store.samples import RunProgress


def new_run(config: FarmConfig, store: Store, host: str = "laptop") -> int:
    return queue_run(
        config,
        store,
        kind=RunKind.PATCHED,
        host=host,
        commit="c" * 40,
        load="thp-split",
        soak_seconds=60,
        send=False,
    )


def set_progress(store: Store, run_id: int, **values: object) -> None:
    with store.session() as session:
        session.execute(update(RunProgress).where(RunProgress.run_id == run_id).values(**values))


def test_only_overdue_active_runs_are_queued_again_at_their_current_tick(
    config: FarmConfig, store: Store
) -> None:
    overdue, on_time, cancelled = (new_run(config, store) for _ in range(3))
    workstation = new_run(config, store, "workstation")
    now = time.time()
    set_progress(store, overdue, due_at=now - 120, tick=7)
    set_progress(store, workstation, due_at=now - 120, tick=2)
    set_progress(store, on_time, due_at=now + 5)
    set_progress(store, cancelled, due_at=now - 120)
    cancel_run(store, cancelled)
    sent: list[tuple[int, str, int, float]] = []

    def schedule(run_id: int, host: str, tick: int, delay: float) -> bool:
        sent.append((run_id, host, tick, delay))
        return True

    assert redrive(store, config, schedule) == 2
    assert sent == [(overdue, "laptop", 7, 0.0), (workstation, "workstation", 2, 0.0)]
    # Not again on the next beat: the run got a fresh overdue period.
    assert redrive(store, config, schedule) == 0


def test_a_broker_that_refuses_the_message_is_tried_again_later(
    config: FarmConfig, store: Store
) -> None:
    run_id = new_run(config, store)
    set_progress(store, run_id, due_at=time.time() - 120)

    assert redrive(store, config, lambda *_: False) == 0
    set_progress(store, run_id, due_at=time.time() - 120)  # the overdue period passed
    assert redrive(store, config, lambda *_: True) == 1
