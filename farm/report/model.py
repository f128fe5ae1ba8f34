# SPDX-License-Identifier: Apache-2.0
"""What a bisection report says, independent of where the facts came from.

``farm.scheduler.report_input`` fills a ReportInput from the store; tests and other tools may build
one by hand. Every renderer (email, markdown, html) reads only this.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from farm.config import ReportConfig


class PatchRef(BaseModel):
    index: int
    subject: str
    full_subject: str = Field(description="as sent, e.g. '[PATCH RFC 07/28] mm: ...'")
    message_id: str | None = None
    references: list[str] = []
    author: str
    to: list[str] = []
    cc: list[str] = []


class Identity(BaseModel):
    """Who the report is from and how it names itself in tags (farm.config: [mail],
    [report])."""

    sender: str = "farm <farm@localhost>"
    tag: str | None = Field(None, description="name <address> in Reported-by:/Tested-by:")
    archive_url: str | None = Field(None, description="Closes: template, {message_id}")
    link_url: str | None = Field(None, description="Link: template, {bisection} {series}")
    cc_lists: list[str] = Field(default=[], description="lists that may be Cc'd; '*' all")
    list_domains: list[str] = Field(default_factory=lambda: ReportConfig().list_domains)

    @property
    def name_in_tags(self) -> str:
        return self.tag or self.sender


class Kernel(BaseModel):
    """The kernel the failure (or the pass) was seen on, as built."""

    base_commit: str | None = None
    release: str | None = None
    compiler: str | None = Field(None, description="CONFIG_CC_VERSION_TEXT of its .config")
    config: str | None = Field(None, description="the whole .config, attached")
    config_sha256: str | None = None
    machine: str | None = Field(None, description="DMI product name, or the QEMU machine")


class LoadRecipe(BaseModel):
    """A load as a patch author runs it without farm (farm.loads.Load's shell parts)."""

    name: str
    script: str
    quiesce: list[str] = []
    binaries: dict[str, str] = Field(default={}, description="name -> C source")
    counters: list[str] = Field(default=[], description="/proc/vmstat fields to watch")
    seconds: float


class Reproducer(BaseModel):
    """What repro.sh needs: the series mail as farm applied it, the config, the load."""

    base_commit: str
    patches: list[tuple[int, bytes]] = Field(description="(index, the mail as received)")
    config: str
    load: LoadRecipe


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
    crash_report: list[str] = Field(
        default=[], description="the titled crash report's lines, as the console had them"
    )
    crash_host: str | None = None
    crash_uptime_seconds: float | None = Field(None, description="kernel uptime at the crash")
    counter_summary: str | None = Field(None, description="e.g. '78299 vs baseline 0'")
    also_seen: list[str] = Field(
        default=[], description="the failing run's other failures, e.g. a crash title"
    )
    culprit: PatchRef | None = None
    applied: list[PatchRef] = Field(default=[], description="patches of the reproducing kernel")
    kernel: Kernel = Kernel()
    load: str | None = None
    soak_seconds: float | None = None
    reproducer: Reproducer | None = None
    confidence: float
    credible_set: list[int] = Field(default=[], description="patch numbers; 0 = no culprit")
    no_culprit: float = 0.0
    runs: list[TestRun] = []
    posterior_steps: list[list[float]] = Field(
        default=[], description="after each step: P(patch 1..N), then P(no culprit)"
    )
    counters: list[CounterSeries] = []
    reproduce: list[str] = Field(default=[], description="shell commands to reproduce")


class PassInput(BaseModel):
    """A soak that passed: what a ``Tested-by:`` reply to the series says."""

    series_id: int
    series_title: str
    total: int
    upto: int
    cover_message_id: str | None = None
    reply_to: PatchRef = Field(description="the cover letter's stand-in: the last patch tested")
    applied: list[PatchRef] = []
    kernel: Kernel = Kernel()
    load: str
    runs: list[TestRun]

    @property
    def hours(self) -> float:
        return sum(r.hours for r in self.runs)

    @property
    def hosts(self) -> list[str]:
        return sorted({r.host for r in self.runs})
