# SPDX-License-Identifier: Apache-2.0
"""The scheduler's library entry points: queue runs, watch them, cancel them.

``farm submit``, the bisection driver and the demo call these; none of them needs to
know about Celery. Queuing writes the run to the database first, then sends its first
step: if the broker is down the run still exists and the reconciler starts it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from farm.config import FarmConfig
from farm.ending import Verdict
from farm.errors import UserError
from farm.loads import get_load
from farm.scheduler import bisecting
from farm.scheduler.bisecting import BisectWork
from farm.store import Store
from farm.store.base import as_utc, utcnow
from farm.store.runs import TERMINAL, Run, RunKind, RunState
from farm.store.samples import RunProgress, ensure_progress

log = logging.getLogger(__name__)

BISECTION_LOCK = 0x62697365  # "bise": the lock space of advance_bisections


@dataclass(frozen=True)
class RunStatus:
    """What a watcher sees of a run."""

    id: int
    kind: str
    host: str
    load: str
    commit: str
    upto: int
    state: str
    verdict: str | None
    reasons: list[str]
    soaked_seconds: float
    soak_seconds: float

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status_of(run: Run, now: dt.datetime | None = None) -> RunStatus:
    now = now or utcnow()
    soaked = 0.0
    if run.load_started_at is not None:
        end = run.ended_at or now
        soaked = min(
            run.soak_seconds, max(0.0, (as_utc(end) - as_utc(run.load_started_at)).total_seconds())
        )
    return RunStatus(
        id=run.id,
        kind=str(run.kind),
        host=run.host,
        load=run.load,
        commit=run.commit,
        upto=run.upto,
        state=str(run.state),
        verdict=str(run.verdict) if run.verdict else None,
        reasons=list(run.reasons),
        soaked_seconds=soaked,
        soak_seconds=run.soak_seconds,
    )


def queue_run(
    config: FarmConfig,
    store: Store,
    *,
    kind: RunKind,
    host: str,
    commit: str,
    load: str,
    soak_seconds: float,
    upto: int = 0,
    series_id: int | None = None,
    application_id: int | None = None,
    bisection_id: int | None = None,
    details: dict[str, Any] | None = None,
    send: bool = True,
) -> int:
    """Record one run and send its first step to the host's queue; the run id."""
    config.host(host)  # a UserError naming the known hosts
    get_load(config, load)  # a UserError naming the known loads
    with store.session() as session:
        run = Run(
            kind=kind,
            host=host,
            commit=commit,
            load=load,
            soak_seconds=soak_seconds,
            upto=upto,
            series_id=series_id,
            application_id=application_id,
            bisection_id=bisection_id,
            details=details or {},
        )
        session.add(run)
        session.flush()
        ensure_progress(session, run.id)
        run_id = run.id
    if send:
        from farm.scheduler.app import get_app, schedule

        get_app(config)
        schedule(run_id, host, 0, 0.0)
    return run_id


def recent_baseline(
    store: Store, *, host: str, load: str, base: str, max_age_hours: float
) -> int | None:
    """A baseline of ``base`` on ``host`` and ``load`` that is active or passed recently."""
    since = utcnow() - dt.timedelta(hours=max_age_hours)
    with store.session() as session:
        return session.scalar(
            select(Run.id)
            .where(
                Run.kind == RunKind.BASELINE,
                Run.host == host,
                Run.load == load,
                Run.commit == base,
                Run.created_at >= since,
                Run.state != RunState.CANCELLED,
                (Run.verdict.is_(None)) | (Run.verdict == Verdict.PASS),
            )
            .order_by(Run.id.desc())
            .limit(1)
        )


def submit_runs(
    config: FarmConfig,
    store: Store,
    *,
    hosts: Sequence[str],
    base_commit: str,
    commit: str,
    upto: int,
    load: str,
    soak_seconds: float,
    series_id: int | None = None,
    application_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> list[int]:
    """For each host: a baseline run of ``base_commit`` unless a recent one exists,
    then the patched run of ``commit``. Baselines are queued first, so on a host
    the baseline soaks before the patched kernel it is compared with."""
    if not hosts:
        raise UserError("no hosts selected", hint="farm submit ... --hosts laptop,workstation")
    run_ids: list[int] = []
    max_age = config.scheduler.baseline_max_age_hours
    for host in hosts:
        runs = [(RunKind.PATCHED, commit, upto)]
        if (
            recent_baseline(store, host=host, load=load, base=base_commit, max_age_hours=max_age)
            is None
        ):
            runs.insert(0, (RunKind.BASELINE, base_commit, 0))
        for kind, sha, patches in runs:
            run_id = queue_run(
                config,
                store,
                kind=kind,
                host=host,
                commit=sha,
                upto=patches,
                load=load,
                soak_seconds=soak_seconds,
                series_id=series_id,
                application_id=application_id,
                details=details,
            )
            run_ids.append(run_id)
    return run_ids


def statuses(store: Store, run_ids: Sequence[int]) -> list[RunStatus]:
    with store.session() as session:
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids)).order_by(Run.id)).all()
        return [status_of(run) for run in runs]


def wait_for_runs(
    store: Store,
    run_ids: Sequence[int],
    *,
    timeout: float,
    progress: Callable[[list[RunStatus]], None] | None = None,
    poll: float = 2.0,
) -> list[RunStatus]:
    """Poll until every run is done or cancelled; the final statuses. ``progress`` is
    called with every poll's statuses; a timeout returns what there is."""
    deadline = time.monotonic() + timeout
    while True:
        current = statuses(store, run_ids)
        if progress is not None:
            progress(current)
        if all(s.done for s in current) or time.monotonic() >= deadline:
            return current
        time.sleep(poll)


def cancel_run(store: Store, run_id: int) -> RunStatus:
    """Ask a run to stop. A queued run is cancelled at once; an active one at its next
    step (which stops the load and frees the host)."""
    with store.session() as session:
        # The run's progress row is its lock: a worker's step commits under it too, so
        # the state read below cannot change before this commits (see lifecycle.commit).
        progress = session.get(RunProgress, run_id, with_for_update=True)
        run = session.get(Run, run_id)
        if run is None:
            raise UserError(f"no run {run_id}", hint="farm status")
        if run.state in TERMINAL:
            return status_of(run)
        progress = progress or ensure_progress(session, run.id)
        progress.cancel_requested = True
        if run.state == RunState.QUEUED:
            progress.tick += 1  # an in-flight step of this run can no longer commit
            run.state = RunState.CANCELLED
            run.ended_at = utcnow()
        return status_of(run)


def carry_out(config: FarmConfig, store: Store, work: Sequence[BisectWork]) -> None:
    """Do what bisection ticks decided: cancel the runs whose outcome no longer
    matters, queue the bisect runs."""
    for w in work:
        for run_id in w.cancel:
            log.info(
                "bisection %s: cancelling run %s (its outcome no longer matters)",
                w.bisection_id,
                run_id,
            )
            cancel_run(store, run_id)
        for test in w.queue:
            rid = queue_run(
                config,
                store,
                kind=RunKind.BISECT,
                host=test.host,
                commit=test.commit,
                load=test.load,
                soak_seconds=test.soak_seconds,
                upto=test.upto,
                series_id=test.series_id,
                application_id=test.application_id,
                bisection_id=w.bisection_id,
            )
            log.info(
                "bisection %s: run %s soaks +%d on %s for %.0fs",
                w.bisection_id, rid, test.upto, test.host, test.soak_seconds,
            )  # fmt: skip


def advance_bisections(config: FarmConfig, store: Store) -> None:
    """Start, feed and plan every open bisection, and act on it (the beat's tick). A
    bisection is held while it is ticked and its runs queued: a second controller's beat
    skips it meanwhile, instead of planning the same runs from the same evidence."""
    for bid in bisecting.open_bisections(config, store):
        with store.exclusive(BISECTION_LOCK, bid) as ours:
            work = bisecting.tick_bisection(config, store, bid) if ours else None
            if work is not None:
                carry_out(config, store, [work])
