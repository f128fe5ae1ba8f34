# SPDX-License-Identifier: Apache-2.0
"""The engine's state in the database: what the scheduler calls, inside its session.

    b = persist.start(session, run_id=..., patches=28, regression="BUG: ...")
    engine = persist.record(session, b, Evidence(...))   # saves state + a BisectStep
    persist.finish(session, b, engine.decide())

Every call leaves the bisection consistent on commit, so a restart resumes it with
``persist.engine_of(b)``.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.bisect import state
from farm.bisect.engine import Decision, Engine, Evidence, Settings
from farm.store.bisect import Bisection, BisectState, BisectStep


def start(
    session: Session,
    *,
    run_id: int,
    patches: int,
    regression: str,
    regression_kind: str = "crash",
    series_id: int | None = None,
    settings: Settings | None = None,
    hosts: list[str] | None = None,
    max_hours: float | None = None,
    requested_by: str = "cli",
    requested: Bisection | None = None,
) -> Bisection:
    """A RUNNING bisection: a new row, or ``requested`` (a REQUESTED row) started."""
    engine = Engine(patches, settings or Settings(kind=regression_kind))
    b = requested or Bisection(requested_by=requested_by)
    b.run_id, b.series_id = run_id, series_id
    b.regression, b.regression_kind = regression, regression_kind
    b.state = BisectState.RUNNING
    b.confidence = engine.settings.confidence
    b.max_hours = max_hours
    b.hosts = hosts or []
    b.engine_state = state.dump(engine)
    b.posterior = _posterior(engine)
    session.add(b)
    session.flush()
    return b


def engine_of(b: Bisection) -> Engine:
    return state.load(b.engine_state)


def _posterior(engine: Engine) -> list[float]:
    patches, none = engine.patch_posterior()
    return [*patches, none]


def record(session: Session, b: Bisection, ev: Evidence) -> Engine:
    """Feed one piece of evidence; store the new state and a step with its posterior."""
    engine = engine_of(b)
    engine.record(ev)
    seq = session.scalar(
        select(func.coalesce(func.max(BisectStep.seq), 0)).where(BisectStep.bisection_id == b.id)
    )
    b.engine_state = state.dump(engine)
    b.posterior = _posterior(engine)
    session.add(
        BisectStep(
            bisection_id=b.id,
            seq=int(seq or 0) + 1,
            run_id=ev.run_id,
            kernel=ev.kernel,
            host=ev.host,
            boot_id=ev.boot,
            uptime_hours=ev.uptime_hours,
            outcome=ev.outcome.value,
            posterior=b.posterior,
        )
    )
    session.flush()
    return engine


def finish(session: Session, b: Bisection, decision: Decision) -> None:
    b.state = BisectState.DONE
    b.culprit = decision.culprit
    b.result = dataclasses.asdict(decision)
    session.flush()
