# SPDX-License-Identifier: Apache-2.0
"""The reconciler: periodic (beat) repair of lost work, from the database.

A step's message can be lost in many ways: the worker was killed after taking it, the
broker restarted empty, the next step could not be queued. None of that matters,
because the database says what each active run waits for (``run_progress.due_at``
and ``tick``): any run overdue by ``overdue_seconds`` gets its current step queued
again. A duplicate is harmless (the tick check drops it), so the reconciler needs no
lock and may run on several controllers at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import select, update

from farm.config import FarmConfig
from farm.store import Store
from farm.store.runs import TERMINAL, Run
from farm.store.samples import RunProgress, ensure_progress

log = logging.getLogger(__name__)

Schedule = Callable[[int, str, int, float], bool]


def redrive(store: Store, config: FarmConfig, schedule: Schedule) -> int:
    """Queue the current step of every overdue active run; how many were queued."""
    now = time.time()
    overdue = config.scheduler.overdue_seconds
    due: list[tuple[int, str, int]] = []
    with store.session() as session:
        runs = session.scalars(select(Run).where(Run.state.not_in(TERMINAL))).all()
        for run in runs:
            progress = ensure_progress(session, run.id)
            if progress.due_at < now - overdue:
                due.append((run.id, run.host, progress.tick))
                # Not again before another overdue period, whether or not this one lands.
                session.execute(
                    update(RunProgress)
                    .where(RunProgress.run_id == run.id)
                    .values(due_at=now + 0.5 * overdue)
                )
    queued = 0
    for run_id, host, tick in due:
        log.info("reconciler: re-driving run %s on %s at tick %s", run_id, host, tick)
        queued += schedule(run_id, host, tick, 0.0)
    return queued
