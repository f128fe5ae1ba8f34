# SPDX-License-Identifier: Apache-2.0
"""Baselines the simulator compares the engine with, behind the engine's own interface.

- ``FixedSoak``: plain binary search (git bisect run, ktest): every host boots the
  midpoint and soaks a fixed time; a matching crash on any host calls it bad at once,
  all hosts surviving calls it good.
- ``Bayesect``: git-bayesect's Bisector, fed one pass/fail per fixed-length run; each
  free host runs the commit Bayesect selects.

Unrelated crashes are not the hunted bug: both treat them as no observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from git_bayesect import Bisector

from farm.bisect.engine import Decision, Evidence, FreeHost, InFlight, Outcome, Test


class Strategy(Protocol):
    def record(self, ev: Evidence) -> None: ...
    def pointless(self, in_flight: Sequence[InFlight]) -> list[InFlight]: ...
    def decide(self, budget_exhausted: bool = False) -> Decision: ...
    def plan(self, free: Sequence[FreeHost], in_flight: Sequence[InFlight]) -> list[Test]: ...


def _undecided(budget_exhausted: bool) -> Decision:
    return Decision(budget_exhausted, None, 0.0, [], 0.0, "budget" if budget_exhausted else "")


class FixedSoak:
    def __init__(self, patches: int, soak_hours: float) -> None:
        self.good, self.bad = 0, patches
        self.soak = soak_hours
        self.pending = 0  # hosts still soaking the current midpoint
        self.crashed = False

    @property
    def mid(self) -> int:
        return (self.good + self.bad) // 2

    def record(self, ev: Evidence) -> None:
        if ev.kernel != self.mid or self.pending == 0:
            return
        self.pending -= 1
        if ev.outcome is Outcome.MATCHING:
            self.bad, self.pending = ev.kernel, 0
        elif self.pending == 0:
            self.good = ev.kernel

    def pointless(self, in_flight: Sequence[InFlight]) -> list[InFlight]:
        return [r for r in in_flight if r.kernel != self.mid or self.pending == 0]

    def decide(self, budget_exhausted: bool = False) -> Decision:
        if self.bad - self.good == 1:
            return Decision(True, self.bad, 1.0, [self.bad], 0.0, "binary search done")
        return _undecided(budget_exhausted)

    def plan(self, free: Sequence[FreeHost], in_flight: Sequence[InFlight]) -> list[Test]:
        if in_flight or self.bad - self.good <= 1:
            return []
        self.pending = len(free)
        return [Test(h.host, self.mid, self.soak, True, 0.0) for h in free]


class Bayesect:
    def __init__(self, patches: int, soak_hours: float, confidence: float = 0.95) -> None:
        self.n = patches
        self.soak = soak_hours
        self.confidence = confidence
        # As `git bayesect start --old base --new HEAD`: index i is kernel n - i, the
        # base included (and testable), so "already bad in the base" is a hypothesis too.
        self.bisector = Bisector(np.ones(patches + 1))

    def record(self, ev: Evidence) -> None:
        if ev.outcome is Outcome.UNRELATED:
            return
        if ev.outcome is Outcome.MATCHING:
            self.bisector.record(self.n - ev.kernel, True)
        elif ev.outcome is Outcome.CLEAN and ev.uptime_hours >= self.soak - 1e-9:
            self.bisector.record(self.n - ev.kernel, False)

    def pointless(self, in_flight: Sequence[InFlight]) -> list[InFlight]:
        return []

    def decide(self, budget_exhausted: bool = False) -> Decision:
        dist = self.bisector.distribution
        best = int(np.argmax(dist))
        if dist[best] >= self.confidence:
            culprit = self.n - best or None  # 0: bad in the base, no culprit
            return Decision(True, culprit, float(dist[best]), [culprit or 0], 0.0, "bayesect")
        return _undecided(budget_exhausted)

    def plan(self, free: Sequence[FreeHost], in_flight: Sequence[InFlight]) -> list[Test]:
        kernel = self.n - self.bisector.select()
        return [Test(h.host, kernel, self.soak, True, 0.0) for h in free]
