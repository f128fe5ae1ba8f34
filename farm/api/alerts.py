"""Alert notifications in, bisection requests out.

Grafana (webhook ``version: "1"``) and Alertmanager (``version: "4"``) post the same
shape: a group of alerts, each with labels, ``startsAt`` and a ``fingerprint``. An alert
whose labels name a ``run`` and what regressed on it (``regression``: a crash title, or
``counter``: a counter that failed its expectation; without either, the run's first
failure) is a bisection request, made by the scheduler's one ``request_in``: only a
finished FAIL run of an applied series that shows that regression is bisected, and an
alert about anything else is recorded with the reason it was ignored. The scheduler's
reconciler starts the bisection; this module never talks to Celery.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.errors import UserError
from farm.scheduler.bisecting import request_in
from farm.store.alerts import Alert, AlertAction
from farm.store.runs import Run

log = logging.getLogger(__name__)

SOURCES = {"1": "grafana", "4": "alertmanager"}


class IncomingAlert(BaseModel):
    """One alert of a notification; unknown fields (values, silenceURL, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: dt.datetime
    fingerprint: str = Field(min_length=1, max_length=64)

    @field_validator("startsAt")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("startsAt needs a timezone")
        return value.astimezone(dt.UTC)


class Notification(BaseModel):
    """A webhook body from Grafana or Alertmanager."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["1", "4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[IncomingAlert] = Field(max_length=1000)


@dataclass(frozen=True)
class Outcome:
    fingerprint: str
    action: AlertAction
    repeat: bool
    bisection_id: int | None
    detail: str


def record(
    session: Session, notification: Notification, *, confidence: float = 0.95
) -> list[Outcome]:
    """Record every alert of a notification and act on the new firing ones."""
    if session.get_bind().dialect.name == "sqlite":
        # Take SQLite's write lock first (waiting up to busy_timeout): a transaction
        # that reads and then writes fails at once if another writer got in between.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    source = SOURCES[notification.version]
    return [_record_one(session, alert, source, confidence) for alert in notification.alerts]


def _record_one(
    session: Session, incoming: IncomingAlert, source: str, confidence: float
) -> Outcome:
    key = (incoming.fingerprint, incoming.startsAt)
    row = _find(session, *key)
    if row is None:
        try:
            with session.begin_nested():
                row = _new_alert(session, incoming, source, confidence)
        except IntegrityError:  # the same alert arrived concurrently: it is a repeat
            row = _find(session, *key)
            assert row is not None
        else:
            log.info(
                "alert %s %s (%s): %s",
                row.alertname,
                row.fingerprint,
                row.status,
                row.action.value,
            )
            return _outcome(row, repeat=False)
    row.notifications += 1
    row.status = incoming.status
    return _outcome(row, repeat=True)


def _find(session: Session, fingerprint: str, starts_at: dt.datetime) -> Alert | None:
    query = select(Alert).where(Alert.fingerprint == fingerprint, Alert.starts_at == starts_at)
    return session.scalars(query).one_or_none()


def _new_alert(session: Session, incoming: IncomingAlert, source: str, confidence: float) -> Alert:
    row = Alert(
        fingerprint=incoming.fingerprint,
        starts_at=incoming.startsAt,
        status=incoming.status,
        source=source,
        alertname=incoming.labels.get("alertname", ""),
        labels=incoming.labels,
        annotations=incoming.annotations,
    )
    if incoming.status == "resolved":
        row.action, row.detail = AlertAction.IGNORED, "resolved before farm saw it fire"
    else:
        _act(session, row, incoming.labels, confidence)
    session.add(row)
    session.flush()
    return row


def _act(session: Session, row: Alert, labels: dict[str, str], confidence: float) -> None:
    """Decide what a new firing alert asks for and fill in row.action/detail/bisection.
    The request is the scheduler's own (farm.scheduler.bisecting.request_in): the same
    checks, pooling and confidence as ``farm bisect`` and the beat."""
    run_label = labels.get("run", "")
    if not run_label:
        row.action, row.detail = AlertAction.IGNORED, "no run label: nothing to bisect"
        return
    run = session.get(Run, int(run_label)) if run_label.isdigit() else None
    if run is None:
        row.action, row.detail = AlertAction.UNKNOWN_RUN, f"no run {run_label!r} in the store"
        return
    try:
        req = request_in(
            session,
            run.id,
            regression=labels.get("regression") or labels.get("counter") or None,
            confidence=confidence,
            requested_by=f"alert:{row.fingerprint}",
        )
    except UserError as exc:
        row.action, row.detail = AlertAction.IGNORED, exc.message
        return
    row.bisection_id = req.bisection_id
    if req.new:
        row.action = AlertAction.BISECTION_REQUESTED
        row.detail = f"bisection {req.bisection_id} of {req.kind} {req.regression!r} requested"
    else:
        row.action = AlertAction.ALREADY_REQUESTED
        row.detail = f"bisection {req.bisection_id} of {req.regression!r} exists"


def _outcome(row: Alert, *, repeat: bool) -> Outcome:
    return Outcome(row.fingerprint, row.action, repeat, row.bisection_id, row.detail)
