# SPDX-License-Identifier: Apache-2.0
"""Host health in the LAVA manner, with its history, and alerts that need a human.

A host's health is the newest row of ``host_health`` for it (UNKNOWN without one):
every change is a row saying who made it, why and when, so ``farm hosts history``
answers "why is ws1 out?" months later. ``host_alerts`` are the farm's own alerts
about hosts (a failed health check, a power switch only a human can press); they are
open until acknowledged.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, ForeignKey, Index, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from farm.store.base import Base, utcnow


class Health(enum.StrEnum):
    UNKNOWN = "UNKNOWN"  # never checked, or a check is due
    GOOD = "GOOD"
    BAD = "BAD"  # failed its health check: taken out until a human looks
    MAINTENANCE = "MAINTENANCE"  # a human took it out
    RETIRED = "RETIRED"  # gone for good


class HostHealthChange(Base):
    __tablename__ = "host_health"
    __table_args__ = (Index("ix_host_health_host_id", "host", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(64))
    state: Mapped[Health] = mapped_column(Enum(Health, native_enum=False, length=16))
    previous: Mapped[Health] = mapped_column(Enum(Health, native_enum=False, length=16))
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(64), doc="a user name, or 'farm'")
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), doc="the run that caused the change"
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HostAlert(Base):
    __tablename__ = "host_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), doc="health-check-failed | manual-power")
    message: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acked_at: Mapped[dt.datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(64))


def states(session: Session) -> dict[str, Health]:
    """The health of every host that has a history (one query: /metrics reads it)."""
    newest = select(func.max(HostHealthChange.id)).group_by(HostHealthChange.host)
    rows = session.execute(
        select(HostHealthChange.host, HostHealthChange.state).where(HostHealthChange.id.in_(newest))
    )
    return {host: state for host, state in rows}
