# SPDX-License-Identifier: Apache-2.0
"""What a notification says: a typed event, the same for every channel."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field


class EventKind(enum.StrEnum):
    RUN_END = "run_end"  # a submitted (patched) run ended
    CULPRIT = "culprit"  # a bisection concluded: its culprit, or that there is none
    HOST_BAD = "host_bad"  # a host failed its health check and gets no more work


class Event(BaseModel):
    kind: EventKind
    title: str = Field(description="one line, e.g. 'run 12 on laptop: FAIL'")
    text: str = Field(default="", description="a few lines for people")
    urgent: bool = Field(default=False, description="a failure, not just news")
    fields: dict[str, Any] = Field(
        default={}, description="for scripts: run, bisection, host, verdict, culprit..."
    )

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind.value, **self.model_dump(mode="json", exclude={"kind"})}
