# SPDX-License-Identifier: Apache-2.0
"""The workers of the farm (`farm worker` processes) and the hosts each serves.

A worker registers when it starts and beats every ``scheduler.heartbeat_seconds``
while it runs, so the controller knows which worker can reach which host and when it
last heard of it (``farm status``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from farm.store.base import Base, utcnow


class Worker(Base):
    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True, doc="name@machine")
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    builds: Mapped[bool] = mapped_column(default=False, doc="serves the build queue")
    artefact_address: Mapped[str | None] = mapped_column(
        Text, doc="USER@HOST[:PORT] other workers fetch its builds from"
    )
