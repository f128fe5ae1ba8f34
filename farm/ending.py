# SPDX-License-Identifier: Apache-2.0
"""How a run ended, as typed values: the verdict writes a :class:`RunEnding`, and the
bisection driver, the host-health policy, the report, the API and the exporter read
its fields. A finding's ``text`` is for people; no code reads it back.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict


class Verdict(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"  # the kernel's fault: what a bisection consumes
    INFRA = "INFRA"  # ours: retried elsewhere or skipped


class Cause(enum.StrEnum):
    """What a finding is about, and so who must act on it."""

    CRASH = "crash"  # a crash report on the console, in pstore or the previous boot's log
    HANG = "hang"  # the host stopped answering
    REBOOT = "reboot"  # the host booted again during the soak, not by farm's hand
    COUNTER = "counter"  # a counter expectation of the load failed
    TAINT = "taint"  # the kernel's taint changed
    KERNEL = "kernel"  # the kernel did not build or boot: its own fault
    LOAD = "load"  # the load exited with an error
    SELFTEST = "selftest"  # a program of the kernel's own selftests failed on the kernel
    INFRA = "infra"  # farm's or the lab's fault
    CONFIG = "config"  # farm's configuration is wrong: a human must act


# A run that ended with one of these never quiesced: no final counter values exist.
STOPPED = frozenset({Cause.CRASH, Cause.HANG, Cause.REBOOT})


class Finding(BaseModel):
    """One thing a run's verdict found."""

    model_config = ConfigDict(frozen=True)

    cause: Cause
    text: str
    title: str | None = None  # CRASH: the crash title
    counter: str | None = None  # COUNTER: the counter's name
    rule: str | None = None  # COUNTER: the expectation that failed
    value: float | None = None  # COUNTER: the measured value
    detail: str | None = None  # COUNTER: the values against the baseline, in words
    test: str | None = None  # SELFTEST, and INFRA for a selftest that skipped: its name


class PowerCycle(BaseModel):
    """farm power-cycled the host because it stopped answering."""

    model_config = ConfigDict(frozen=True)

    done: bool  # False: power control failed or there is none
    text: str


class SoakEvents(BaseModel):
    """What the soak saw happen to the host before the run was collected."""

    hang: Finding | None = None
    reboot: Finding | None = None
    power_cycle: PowerCycle | None = None

    def findings(self) -> list[Finding]:
        return [f for f in (self.hang, self.reboot) if f is not None]


class SelftestTally(BaseModel):
    """The kernel selftests a load ran, over its complete rounds."""

    model_config = ConfigDict(frozen=True)

    rounds: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0


class RunEnding(BaseModel):
    """Everything the verdict decided, beside the verdict itself."""

    findings: list[Finding] = []
    power_cycle: PowerCycle | None = None
    baseline_run: int | None = None  # the baseline the counters were compared against
    samples: int = 0
    console_tail: list[str] = []  # the console's last words when the load never quiesced
    notes: list[str] = []  # what people may want to know; never a reason to fail
    selftests: SelftestTally | None = None  # a load with selftests: what they did

    def of(self, *causes: Cause) -> list[Finding]:
        return [f for f in self.findings if f.cause in causes]

    def has(self, *causes: Cause) -> bool:
        return bool(self.of(*causes))

    @property
    def failed_counters(self) -> list[str]:
        return [f.counter for f in self.of(Cause.COUNTER) if f.counter is not None]

    @property
    def stopped(self) -> bool:
        """The load never quiesced: a crash, a hang or a reboot ended it."""
        return self.has(*STOPPED)

    @property
    def kind(self) -> str:
        """One word for the ending: the first finding's cause, or ``clean``."""
        return str(self.findings[0].cause) if self.findings else "clean"

    @property
    def reasons(self) -> list[str]:
        """The findings in words, for people."""
        return [f.text for f in self.findings]


def only(cause: Cause, text: str) -> RunEnding:
    """An ending with a single finding (a build failure, an infrastructure error...)."""
    return RunEnding(findings=[Finding(cause=cause, text=text)])
