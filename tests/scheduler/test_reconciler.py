# SPDX-License-Identifier: Apache-2.0
"""The reconciler re-drives runs whose next step is overdue, from the database, and
backs off (in the broker's Redis) from steps that are late rather than lost."""

from __future__ import annotations

import time

import redis
from sqlalchemy import update

from farm.config import FarmConfig
from farm.scheduler.api import cancel_run, queue_run
from farm.scheduler.app import queue_for
from farm.scheduler.reconciler import redrive
from farm.store import Store
from farm.store.runs import RunKind
from farm.store.samples import RunProgress

Sent = list[tuple[int, str, int, float]]


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


def recorder(sent: Sent):  # type: ignore[no-untyped-def]
    def schedule(run_id: int, host: str, tick: int, delay: float) -> bool:
        sent.append((run_id, host, tick, delay))
        return True

    return schedule


def test_only_overdue_active_runs_are_queued_again_at_their_current_tick(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    overdue, on_time, cancelled = (new_run(config, store) for _ in range(3))
    workstation = new_run(config, store, "workstation")
    now = time.time()
    set_progress(store, overdue, due_at=now - 120, tick=7)
    set_progress(store, workstation, due_at=now - 100, tick=2)
    set_progress(store, on_time, due_at=now + 5)
    set_progress(store, cancelled, due_at=now - 120)
    cancel_run(store, cancelled)
    sent: Sent = []

    assert redrive(store, config, broker, recorder(sent), now) == 2
    assert sent == [(overdue, "laptop", 7, 0.0), (workstation, "workstation", 2, 0.0)]
    # Not again on the next beat: the re-driven step gets time to run.
    assert redrive(store, config, broker, recorder(sent), now + 15) == 0


def test_a_late_step_is_re_driven_ever_less_often_until_it_runs(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    """Workers too far behind leave a step late, not lost: each re-drive of the same
    step waits twice as long as the one before (overdue_seconds is 30 here); once the
    step ran (its tick moved on), its next lateness starts over."""
    run_id = new_run(config, store)
    start = time.time()
    set_progress(store, run_id, due_at=start - 31, tick=3)
    sent: Sent = []
    beats = [start + s for s in range(0, 300, 15)]  # a beat every 15 s for 5 minutes
    redriven_at = [
        round(beat - start)
        for beat in beats
        if redrive(store, config, broker, recorder(sent), beat)
    ]

    assert redriven_at == [0, 60, 180]  # then 30 s x 2, x 4: next at 420 s
    assert {tick for _, _, tick, _ in sent} == {3}
    set_progress(store, run_id, due_at=start + 300 - 31, tick=4)  # it ran, late again
    assert redrive(store, config, broker, recorder(sent), start + 300) == 1


def test_a_step_still_waiting_in_its_hosts_queue_is_not_queued_twice(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    """No worker has taken the host's messages yet (saturated, or none serves the
    host): another copy would only wait behind them."""
    waiting, lost = new_run(config, store), new_run(config, store, "workstation")
    for run_id in (waiting, lost):
        set_progress(store, run_id, due_at=time.time() - 120)
    broker.lpush(queue_for("laptop"), b"a message no worker took yet")
    sent: Sent = []

    assert redrive(store, config, broker, recorder(sent)) == 1
    assert [run_id for run_id, *_ in sent] == [lost]


def test_at_most_redrive_per_beat_steps_are_queued_in_one_beat_the_latest_first(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    """After a broker restarted empty every run is overdue at once: they are re-driven
    over several beats, most overdue first, rather than all in one burst."""
    config = config.model_copy(
        update={"scheduler": config.scheduler.model_copy(update={"redrive_per_beat": 2})}
    )
    runs = [new_run(config, store, host) for host in ("laptop", "workstation") for _ in (0, 1)]
    now = time.time()
    for lateness, run_id in zip((40, 100, 60, 80), runs, strict=True):
        set_progress(store, run_id, due_at=now - lateness)
    sent: Sent = []

    assert redrive(store, config, broker, recorder(sent), now) == 2
    assert redrive(store, config, broker, recorder(sent), now + 15) == 2
    assert [run_id for run_id, *_ in sent] == [runs[1], runs[3], runs[2], runs[0]]


def test_a_broker_that_refuses_the_message_is_tried_again_later(
    config: FarmConfig, store: Store, broker: redis.Redis[bytes]
) -> None:
    run_id = new_run(config, store)
    now = time.time()
    set_progress(store, run_id, due_at=now - 120)

    assert redrive(store, config, broker, lambda *_: False, now) == 0
    assert redrive(store, config, broker, lambda *_: True, now + 60) == 1
