# SPDX-License-Identifier: Apache-2.0
"""Alerts received by ``farm api``: every notification is recorded, acted on once.

Grafana and Alertmanager both re-send a firing alert on their repeat interval, and
send it once more when it resolves. (fingerprint, starts_at) names one occurrence of
an alert, so a repeat finds its row instead of starting a second bisection.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from farm.store.base import Base, utcnow


class AlertAction(enum.StrEnum):
    BISECTION_REQUESTED = "bisection_requested"  # a new REQUESTED row in bisections
    ALREADY_REQUESTED = "already_requested"  # that run/regression is bisected already
    UNKNOWN_RUN = "unknown_run"  # the `run` label names no run in the store
    IGNORED = "ignored"  # no run, or nothing on it to bisect


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), doc="firing | resolved (latest seen)")
    source: Mapped[str] = mapped_column(String(16), doc="grafana | alertmanager")
    alertname: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    action: Mapped[AlertAction] = mapped_column(Enum(AlertAction, native_enum=False, length=24))
    detail: Mapped[str] = mapped_column(Text, default="", doc="why that action, for people")
    bisection_id: Mapped[int | None] = mapped_column(
        ForeignKey("bisections.id", ondelete="SET NULL")
    )
    notifications: Mapped[int] = mapped_column(default=1, doc="deliveries incl. repeats")
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
