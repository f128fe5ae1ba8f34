# SPDX-License-Identifier: Apache-2.0
"""Which notifications happen, decided where the facts are written: a run's verdict
(lifecycle.commit), a bisection's conclusion (bisecting), a host going BAD (health).

An event is announced on the session that writes the fact and delivered only after that
session commits: a rolled-back step (a lost lease, a duplicate task) announces nothing,
and delivery (SMTP, HTTP, notify-send) never holds a database transaction open. Delivery
failures are logged by farm.notify and never reach the caller.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from farm.bisect.engine import Decision
from farm.config import FarmConfig
from farm.ending import Verdict
from farm.notify import Event, deliver
from farm.notify.event import EventKind
from farm.store.bisect import Bisection
from farm.store.runs import Run, RunKind, RunState

log = logging.getLogger(__name__)

_PENDING = "farm.notify.pending"


def announce(session: Session, config: FarmConfig, event: Event) -> None:
    """Deliver ``event`` once ``session`` commits; forget it if it rolls back."""
    if not getattr(config.notify, event.kind.value):
        return
    pending: list[Event] = session.info.setdefault(_PENDING, [])
    if not pending:

        def delivered(committed: Session) -> None:
            for queued in committed.info.pop(_PENDING, []):
                try:
                    deliver(queued, config)
                except Exception:  # a bug in a channel must not fail the step that committed
                    log.exception("notification %r not delivered", queued.title)

        def forgotten(rolled_back: Session, *_: Any) -> None:
            rolled_back.info.pop(_PENDING, None)

        sa_event.listen(session, "after_commit", delivered, once=True)
        sa_event.listen(session, "after_rollback", forgotten, once=True)
    pending.append(event)


def run_ended(session: Session, config: FarmConfig, run: Run) -> None:
    """A submitted run has its verdict (baseline, bisect and health runs are farm's own
    business and say nothing)."""
    if run.kind != RunKind.PATCHED or run.state != RunState.DONE or run.verdict is None:
        return
    why = "; ".join(run.reasons[:3])
    kernel = "base" if run.upto == 0 else f"+{run.upto:02d}"
    announce(
        session,
        config,
        Event(
            kind=EventKind.RUN_END,
            title=f"run {run.id} on {run.host} ({kernel}): {run.verdict.value}",
            text=why or f"{run.load} soaked without a finding.",
            urgent=run.verdict != Verdict.PASS,
            fields={
                "run": run.id,
                "host": run.host,
                "series": run.series_id,
                "upto": run.upto,
                "verdict": run.verdict.value,
                "reasons": run.reasons,
                "report": f"farm report --tested {run.series_id}" if run.series_id else None,
            },
        ),
    )


def bisection_done(session: Session, config: FarmConfig, b: Bisection, decision: Decision) -> None:
    if decision.culprit:
        title = f"bisection {b.id}: first bad patch {decision.culprit:02d}"
        text = f"{b.regression}: patch {decision.culprit:02d} ({decision.confidence:.1%})"
    else:
        title = f"bisection {b.id}: no single culprit"
        text = f"{b.regression}: {decision.reason}"
    announce(
        session,
        config,
        Event(
            kind=EventKind.CULPRIT,
            title=title,
            text=f"{text}\nfarm report {b.id} --send",
            urgent=bool(decision.culprit),
            fields={
                "bisection": b.id,
                "regression": b.regression,
                "culprit": decision.culprit,
                "confidence": decision.confidence,
                "series": b.series_id,
            },
        ),
    )


def host_bad(session: Session, config: FarmConfig, host: str, reason: str, run_id: int) -> None:
    announce(
        session,
        config,
        Event(
            kind=EventKind.HOST_BAD,
            title=f"host {host} is BAD and gets no work",
            text=f"{reason}\nfarm hosts maintenance {host} off  # checks it again",
            urgent=True,
            fields={"host": host, "reason": reason, "run": run_id},
        ),
    )
