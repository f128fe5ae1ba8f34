# SPDX-License-Identifier: Apache-2.0
"""The reconciler: periodic (beat) repair of lost work, from the database.

A step's message can be lost in many ways: the worker was killed after taking it, the
broker restarted empty, the next step could not be queued. None of that matters,
because the database says what each active run waits for (``run_progress.due_at``
and ``tick``): any run overdue by ``overdue_seconds`` gets its current step queued
again. A duplicate is harmless (the tick check drops it), and the reconciler may run
on several controllers at once; still, each overdue run is claimed with SELECT ... FOR
UPDATE SKIP LOCKED, so that two reconcilers do not both queue it and a run whose step
is committing right now (its run_progress row locked by the worker) is left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

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
    with store.session() as session:
        _add_missing_progress(session)
        due = session.execute(
            select(RunProgress.run_id, Run.host, RunProgress.tick)
            .join(Run, Run.id == RunProgress.run_id)
            .where(Run.state.not_in(TERMINAL), RunProgress.due_at < now - overdue)
            .order_by(RunProgress.run_id)
            .with_for_update(of=RunProgress, skip_locked=True)
        ).all()
        # Not again before another overdue period, whether or not this one lands.
        session.execute(
            update(RunProgress)
            .where(RunProgress.run_id.in_([run_id for run_id, _, _ in due]))
            .values(due_at=now + 0.5 * overdue)
        )
    queued = 0
    for run_id, host, tick in due:
        log.info("reconciler: re-driving run %s on %s at tick %s", run_id, host, tick)
        queued += schedule(run_id, host, tick, 0.0)
    return queued


def _add_missing_progress(session: Session) -> None:
    """An active run without lifecycle bookkeeping gets it, due now (so it is re-driven
    one overdue period from now if nothing steps it)."""
    missing = session.scalars(
        select(Run.id)
        .outerjoin(RunProgress, RunProgress.run_id == Run.id)
        .where(Run.state.not_in(TERMINAL), RunProgress.run_id.is_(None))
    ).all()
    for run_id in missing:
        ensure_progress(session, run_id)
