# SPDX-License-Identifier: Apache-2.0
"""What a bisection report says, independent of where the facts came from.

``farm.scheduler.report_input`` fills a ReportInput from the store; tests and other tools may build
one by hand. Every renderer (email, markdown, html) reads only this.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PatchRef(BaseModel):
    index: int
    subject: str
    full_subject: str = Field(description="as sent, e.g. '[PATCH RFC 07/28] mm: ...'")
    message_id: str | None = None
    references: list[str] = []
    author: str
    to: list[str] = []
    cc: list[str] = []


class TestRun(BaseModel):
    kernel: int = Field(description="patches applied, 0 is the base")
    host: str
    boot: str
    hours: float
    outcome: str


class CounterSeries(BaseModel):
    """One counter over one tested kernel's run: (hours since the run began, value)."""

    kernel: int
    host: str
    points: list[tuple[float, float]]


class ReportInput(BaseModel):
    bisection_id: int
    series_title: str
    total: int = Field(description="patches in the series")
    cover_message_id: str | None = None
    regression: str = Field(description="crash title, or the counter's name")
    regression_kind: str = "crash"
    stack: list[str] = Field(default=[], description="top of the decoded stack")
    counter_summary: str | None = Field(None, description="e.g. '78299 vs baseline 0'")
    also_seen: list[str] = Field(
        default=[], description="the failing run's other failures, e.g. a crash title"
    )
    culprit: PatchRef | None = None
    confidence: float
    credible_set: list[int] = Field(default=[], description="patch numbers; 0 = no culprit")
    no_culprit: float = 0.0
    runs: list[TestRun] = []
    posterior_steps: list[list[float]] = Field(
        default=[], description="after each step: P(patch 1..N), then P(no culprit)"
    )
    counters: list[CounterSeries] = []
    reproduce: list[str] = Field(default=[], description="shell commands to reproduce")
