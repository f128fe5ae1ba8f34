# SPDX-License-Identifier: Apache-2.0
"""Alert notifications in, bisection requests out.

Grafana (webhook ``version: "1"``) and Alertmanager (``version: "4"``) post the same
shape: a group of alerts, each with labels, ``startsAt`` and a ``fingerprint``. An alert
whose labels name a ``run`` and what regressed on it (``regression``: a crash title, or
``counter``: a counter that failed its expectation; without either, the run's first
failure) is a bisection request, made by the scheduler's one ``request_in``: only a
finished FAIL run of an applied series that shows that regression is bisected, and an
alert about anything else is recorded with the reason it was ignored. The scheduler's
reconciler starts the bisection; this module never talks to Celery.

Each alert is read alone: one malformed alert is reported ("rejected", in the answer
and the log) while the rest of its group is recorded, because a sender whose whole
delivery fails retries it forever. Only a notification that cannot be read at all is
refused.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.errors import UserError
from farm.scheduler.bisecting import request_in
from farm.store.alerts import Alert, AlertAction
from farm.store.base import MAX_ID
from farm.store.runs import Run

log = logging.getLogger(__name__)

SOURCES = {"1": "grafana", "4": "alertmanager"}
REJECTED: Final = "rejected"  # an alert too malformed to record


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
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:  # 0001-01-01T00:00:00+05:00 has no UTC time
            raise ValueError("startsAt out of range") from None


class Notification(BaseModel):
    """A webhook body from Grafana or Alertmanager."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["1", "4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[Any] = Field(max_length=1000)  # each read alone by record()

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Notification:
        """When the notification is unreadable, name its alerts' problems too, so the
        sender fixes everything at once."""
        try:
            notification: Notification = handler(data)
        except ValidationError as exc:
            raw = data.get("alerts") if isinstance(data, dict) else None
            found = [_init(e) for e in exc.errors()]
            found += _alert_errors(raw if isinstance(raw, list) else [])
            raise ValidationError.from_exception_data(exc.title, found) from None
        return notification


def _alert_errors(alerts: list[Any]) -> list[InitErrorDetails]:
    found: list[InitErrorDetails] = []
    for index, raw in enumerate(alerts):
        try:
            IncomingAlert.model_validate(raw)
        except ValidationError as exc:
            found += [_init(e, "alerts", index) for e in exc.errors()]
    return found


def _init(error: ErrorDetails, *within: str | int) -> InitErrorDetails:
    """An error as found, in the form pydantic builds a ValidationError from."""
    loc = (*within, *error["loc"])
    init: InitErrorDetails = {"type": error["type"], "loc": loc, "input": error["input"]}
    if "ctx" in error:
        init["ctx"] = error["ctx"]
    return init


@dataclass(frozen=True)
class Outcome:
    fingerprint: str
    action: AlertAction | Literal["rejected"]
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
    outcomes = []
    for index, raw in enumerate(notification.alerts):
        try:
            incoming = IncomingAlert.model_validate(raw)
        except ValidationError as exc:
            outcomes.append(_rejected(index, raw, exc))
        else:
            outcomes.append(_record_one(session, incoming, source, confidence))
    return outcomes


def _rejected(index: int, raw: Any, error: ValidationError) -> Outcome:
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
        for e in error.errors()
    )
    if not isinstance(raw, dict):
        problems = f"not an object but {type(raw).__name__} {str(raw)[:40]!r}"
    detail = f"alert {index} not recorded: {problems}"
    log.warning("%s", detail)
    fingerprint = raw.get("fingerprint") if isinstance(raw, dict) else None
    return Outcome(str(fingerprint or "")[:64], REJECTED, False, None, detail)


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
    run_id = _run_id(run_label)
    run = session.get(Run, run_id) if run_id is not None else None
    if run is None:
        row.action = AlertAction.UNKNOWN_RUN
        row.detail = f"no run {run_label!r} in the store"
        if run_id is None:
            row.detail += ": not a run id"
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


def _run_id(label: str) -> int | None:
    """The id a ``run`` label names: ASCII digits ("²" is a digit to str.isdigit) of a
    number the database can hold (a bigger one overflows SQLite's INTEGER)."""
    if not (label.isascii() and label.isdigit()) or len(label) > len(str(MAX_ID)):
        return None  # (and int() refuses more than 4300 digits)
    number = int(label)
    return number if number <= MAX_ID else None


def _outcome(row: Alert, *, repeat: bool) -> Outcome:
    return Outcome(row.fingerprint, row.action, repeat, row.bisection_id, row.detail)
