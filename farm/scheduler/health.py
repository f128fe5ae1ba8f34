# SPDX-License-Identifier: Apache-2.0
"""Host health in the LAVA manner: GOOD, BAD, MAINTENANCE, RETIRED, UNKNOWN.

The scheduler asks :func:`gate` before a queued run claims a host, and calls
:func:`after_run` in the transaction that ends a run:

- a run that ended INFRA, hung or had its host power-cycled makes the host UNKNOWN
  and queues a HEALTH run (the host's known-good kernel, a short load) that goes
  before any other queued run of that host; other work waits for it;
- a HEALTH run that passes makes the host GOOD; one that fails makes it BAD, raises
  an alert saying why, and the host gets no work until a human runs
  ``farm hosts maintenance NAME off`` (which checks it again);
- MAINTENANCE and RETIRED hosts get no work at all.

Everything here works on a caller's session, so a state change commits with the run
outcome that caused it, or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.config import FarmConfig
from farm.ending import Cause, Verdict
from farm.hosts.base import Host
from farm.hosts.power import ManualPower
from farm.scheduler import notifying
from farm.store import Store
from farm.store.base import utcnow
from farm.store.hosts import Health, HostAlert, HostHealthChange
from farm.store.runs import TERMINAL, Run, RunKind, RunState

log = logging.getLogger(__name__)

FARM = "farm"  # the `by` of changes the farm makes itself
WORKABLE = (Health.GOOD, Health.UNKNOWN)


def latest(session: Session, host: str) -> HostHealthChange | None:
    return session.scalar(
        select(HostHealthChange)
        .where(HostHealthChange.host == host)
        .order_by(HostHealthChange.id.desc())
        .limit(1)
    )


def state_of(session: Session, host: str) -> Health:
    change = latest(session, host)
    return change.state if change else Health.UNKNOWN


def history(session: Session, host: str, limit: int = 20) -> list[HostHealthChange]:
    """The newest ``limit`` changes of ``host``, newest first."""
    return list(
        session.scalars(
            select(HostHealthChange)
            .where(HostHealthChange.host == host)
            .order_by(HostHealthChange.id.desc())
            .limit(limit)
        )
    )


def set_health(
    session: Session,
    host: str,
    state: Health,
    *,
    reason: str,
    by: str = FARM,
    run_id: int | None = None,
) -> HostHealthChange:
    """Record a change of ``host`` to ``state``; every call is a row of its history."""
    change = HostHealthChange(
        host=host,
        state=state,
        previous=state_of(session, host),
        reason=reason,
        by=by,
        run_id=run_id,
    )
    session.add(change)
    session.flush()
    log.info("host %s: %s -> %s by %s: %s", host, change.previous, state, by, reason)
    return change


def raise_alert(
    session: Session, host: str, kind: str, message: str, run_id: int | None = None
) -> HostAlert:
    """An alert row for people (``farm hosts alerts``) and the same words in the log."""
    alert = HostAlert(host=host, kind=kind, message=message, run_id=run_id)
    session.add(alert)
    session.flush()
    log.warning("ALERT host %s (%s): %s", host, kind, message)
    return alert


def open_alerts(session: Session, host: str | None = None) -> list[HostAlert]:
    query = select(HostAlert).where(HostAlert.acked_at.is_(None)).order_by(HostAlert.id)
    if host is not None:
        query = query.where(HostAlert.host == host)
    return list(session.scalars(query))


def ack_alerts(session: Session, host: str, *, by: str, kind: str | None = None) -> int:
    """Acknowledge the open alerts of ``host`` (of one ``kind``); how many."""
    alerts = [a for a in open_alerts(session, host) if kind is None or a.kind == kind]
    for alert in alerts:
        alert.acked_at, alert.acked_by = utcnow(), by
    return len(alerts)


def pending_check(session: Session, host: str) -> int | None:
    """The id of a HEALTH run of ``host`` that is queued or active."""
    return session.scalar(
        select(Run.id)
        .where(Run.host == host, Run.kind == RunKind.HEALTH, Run.state.not_in(TERMINAL))
        .order_by(Run.id)
        .limit(1)
    )


def gate(session: Session, host: str, kind: RunKind) -> str | None:
    """Why a queued run of ``kind`` may not claim ``host`` now; None when it may."""
    state = state_of(session, host)
    if state in (Health.MAINTENANCE, Health.RETIRED):
        return f"host {host} is {state}"
    if kind == RunKind.HEALTH:
        return None
    if state not in WORKABLE:
        return f"host {host} is {state}"
    check = pending_check(session, host)
    if check is not None:
        return f"host {host} waits for its health check (run {check})"
    return None


def queue_check(session: Session, config: FarmConfig, host: str) -> int:
    """Add a HEALTH run of ``host`` (the caller sends its first step); its id.

    The known-good kernel is that of the newest baseline that passed on this host
    (built from its cache); without one, the kernel the host runs after its power
    cycle or reboot: a bare-metal host's default kernel.
    """
    from farm.store.samples import ensure_progress

    existing = pending_check(session, host)
    if existing is not None:
        return existing
    settings = config.host(host).health
    good = session.scalar(
        select(Run)
        .where(Run.host == host, Run.kind == RunKind.BASELINE, Run.verdict == Verdict.PASS)
        .order_by(Run.id.desc())
        .limit(1)
    )
    details: dict[str, Any] = {"kernel": "running"}
    commit, application_id = "running", None
    if good is not None:
        details = {k: v for k, v in good.details.items() if k in ("kernel", "tree")}
        commit, application_id = good.commit, good.application_id
    run = Run(
        kind=RunKind.HEALTH,
        host=host,
        commit=commit,
        application_id=application_id,
        load=settings.load or config.default_load,
        soak_seconds=settings.seconds,
        details=details,
    )
    session.add(run)
    session.flush()
    ensure_progress(session, run.id)
    return run.id


@dataclass(frozen=True)
class HumanChange:
    previous: Health
    state: Health
    reason: str
    health_check_run: int | None  # queued: the caller sends it, or the reconciler does
    alerts_acknowledged: int


def set_by_human(
    session: Session, config: FarmConfig, host: str, state: Health, *, reason: str, by: str
) -> HumanChange:
    """A person takes ``host`` out (MAINTENANCE, RETIRED) or puts it back (UNKNOWN):
    putting it back queues a health check first when the host has them, and
    acknowledges its open alerts. The CLI and the web view both come here."""
    settings = config.host(host)  # a UserError naming the known hosts
    previous = state_of(session, host)
    check = None
    if state == Health.UNKNOWN and settings.health.checks:
        check = queue_check(session, config, host)
        reason += f"; health check run {check}"
    set_health(session, host, state, reason=reason, by=by)
    acked = ack_alerts(session, host, by=by) if state == Health.UNKNOWN else 0
    return HumanChange(previous, state, reason, check, acked)


def _needs_check(run: Run) -> str | None:
    """Why a finished run leaves its host in doubt, if it does."""
    if run.verdict == Verdict.INFRA:
        return f"run {run.id} ended INFRA: {run.reasons[0] if run.reasons else '?'}"
    hang = run.ending.of(Cause.HANG)
    if hang:
        return f"run {run.id}: {hang[0].text}"
    if run.ending.power_cycle is not None:
        return f"run {run.id}: {run.ending.power_cycle.text}"
    return None


def after_run(session: Session, config: FarmConfig, run: Run) -> int | None:
    """Update the host's health for a run that just ended; a new HEALTH run's id."""
    state = state_of(session, run.host)
    if state in (Health.MAINTENANCE, Health.RETIRED) or run.state != RunState.DONE:
        return None  # a human's decision stands; a cancelled run says nothing
    if run.kind == RunKind.HEALTH:
        if run.verdict == Verdict.PASS:
            set_health(
                session, run.host, Health.GOOD, reason=f"health check run {run.id} passed",
                run_id=run.id,
            )  # fmt: skip
            return None
        failed = f"health check run {run.id} failed: {'; '.join(run.reasons) or run.verdict}"
        set_health(session, run.host, Health.BAD, reason=failed, run_id=run.id)
        raise_alert(session, run.host, "health-check-failed", failed, run_id=run.id)
        notifying.host_bad(session, config, run.host, failed, run.id)
        return None
    why = _needs_check(run)
    settings = next((h.health for h in config.hosts if h.name == run.host), None)
    if why is None or state == Health.BAD or settings is None or not settings.checks:
        return None
    check = queue_check(session, config, run.host)
    set_health(
        session, run.host, Health.UNKNOWN, reason=f"{why}; health check run {check}",
        run_id=run.id,
    )  # fmt: skip
    return check


def wire_alerts(host: Host, store: Store) -> Host:
    """Make a manual power plugin's requests alert rows too (it knows no database)."""
    power = host.power
    if isinstance(power, ManualPower):

        def alert(message: str) -> None:
            with store.session() as session:
                raise_alert(session, host.name, "manual-power", message)

        power.alert = alert
    return host
