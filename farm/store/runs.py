# SPDX-License-Identifier: Apache-2.0
"""Tables for soak runs and what they find.

A run is one (kernel, host, load, soak length) test. Its ``state`` is the run lifecycle
advanced by the scheduler; ``verdict`` and ``ending`` are set once, when it ends.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from farm.ending import RunEnding, Verdict
from farm.store.base import Base, Model, utcnow


class RunState(enum.StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    BOOTING = "booting"
    SOAKING = "soaking"
    QUIESCING = "quiescing"
    COLLECTING = "collecting"
    DONE = "done"
    CANCELLED = "cancelled"


TERMINAL = (RunState.DONE, RunState.CANCELLED)  # a run in these states never moves again


class RunKind(enum.StrEnum):
    PATCHED = "patched"
    BASELINE = "baseline"
    BISECT = "bisect"
    HEALTH = "health"


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_host_state", "host", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RunKind] = mapped_column(Enum(RunKind, native_enum=False, length=16))
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="SET NULL"))
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id", ondelete="SET NULL")
    )
    bisection_id: Mapped[int | None] = mapped_column(  # a cycle: bisections refer to runs
        ForeignKey("bisections.id", ondelete="SET NULL", use_alter=True)
    )
    upto: Mapped[int] = mapped_column(default=0, doc="patches applied: 0 is the base")
    commit: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(64))
    load: Mapped[str] = mapped_column(String(64))
    soak_seconds: Mapped[float]
    state: Mapped[RunState] = mapped_column(
        Enum(RunState, native_enum=False, length=16), default=RunState.QUEUED, index=True
    )
    verdict: Mapped[Verdict | None] = mapped_column(Enum(Verdict, native_enum=False, length=8))
    ending: Mapped[RunEnding] = mapped_column(Model(RunEnding), default=RunEnding)
    details: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="what to soak: kernel (running), tree; notes made during the soak"
    )
    kernel_release: Mapped[str | None] = mapped_column(Text)
    boot_id: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    load_started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def reasons(self) -> list[str]:
        """Why the verdict is what it is, in words (for people: code reads ``ending``)."""
        return self.ending.reasons


class Crash(Base):
    """One crash report seen on a run's console (or pstore, or previous boot's log)."""

    __tablename__ = "crashes"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    alt_titles: Mapped[list[str]] = mapped_column(default=list)
    kind: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(64), index=True)
    corrupted: Mapped[bool] = mapped_column(default=False)
    frames: Mapped[list[str]] = mapped_column(default=list)
    report: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="console")
    uptime_seconds: Mapped[float | None]
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def baseline_of(session: Session, run: Run) -> Run | None:
    """The baseline a run is compared with: the one its verdict used, else the newest
    baseline of the same series on the same host and load (the web view's plots and
    the exporter's overlays)."""
    if run.ending.baseline_run is not None:
        return session.get(Run, run.ending.baseline_run)
    if run.kind == RunKind.BASELINE:
        return None
    return session.scalar(
        select(Run)
        .where(
            Run.kind == RunKind.BASELINE,
            Run.host == run.host,
            Run.load == run.load,
            Run.series_id == run.series_id,
            Run.id != run.id,
        )
        .order_by(Run.id.desc())
        .limit(1)
    )
