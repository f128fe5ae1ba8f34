# SPDX-License-Identifier: Apache-2.0
"""Tables for bisections: the engine's state lives here, so a restart resumes it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from farm.store.base import Base, utcnow


class BisectState(enum.StrEnum):
    REQUESTED = "requested"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class Bisection(Base):
    __tablename__ = "bisections"
    __table_args__ = (UniqueConstraint("run_id", "regression"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="SET NULL"))
    regression: Mapped[str] = mapped_column(Text, doc="crash title or counter name hunted")
    regression_kind: Mapped[str] = mapped_column(Text, default="crash", doc="crash | counter")
    state: Mapped[BisectState] = mapped_column(
        Enum(BisectState, native_enum=False, length=16), default=BisectState.REQUESTED
    )
    confidence: Mapped[float] = mapped_column(default=0.95)
    max_hours: Mapped[float | None]
    hosts: Mapped[list[str]] = mapped_column(default=list)
    requested_by: Mapped[str] = mapped_column(Text, default="cli")
    culprit: Mapped[int | None] = mapped_column(doc="first bad patch index, when found")
    posterior: Mapped[list[float]] = mapped_column(default=list)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    engine_state: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="farm.bisect.state.dump(): settings and the evidence log"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BisectStep(Base):
    """One piece of evidence the engine took in, and the posterior just after it."""

    __tablename__ = "bisect_steps"
    __table_args__ = (UniqueConstraint("bisection_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bisection_id: Mapped[int] = mapped_column(ForeignKey("bisections.id", ondelete="CASCADE"))
    seq: Mapped[int]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    kernel: Mapped[int] = mapped_column(doc="patches applied, 0 is the base")
    host: Mapped[str] = mapped_column(String(64))
    boot_id: Mapped[str] = mapped_column(String(64))
    uptime_hours: Mapped[float]
    outcome: Mapped[str] = mapped_column(String(16), doc="farm.bisect.engine.Outcome")
    posterior: Mapped[list[float]] = mapped_column(default=list, doc="patches 1..N, then none")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
