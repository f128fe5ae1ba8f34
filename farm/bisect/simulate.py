# SPDX-License-Identifier: Apache-2.0
"""A simulated farm to measure bisection strategies against a known culprit.

Each trial draws a culprit uniformly from 1..N. On a bad kernel each boot crashes after a
Weibull time with the given mean and shape; unrelated crashes come at a constant rate on
every kernel; each fresh test pays a build+boot overhead. The strategy starts from one
crash of the full series on one host (as the farm would after a failed run) and is told
nothing else: not the MTTF, not the shape. Hours are wall-clock hours from then until a
culprit is named; a wrong or missing answer counts against accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from farm.bisect.engine import Engine, Evidence, FreeHost, InFlight, Outcome, Settings, Test
from farm.bisect.strategies import Bayesect, FixedSoak, Strategy


class SimConfig(BaseModel):
    patches: int = Field(28, ge=1)
    mttf_hours: float = Field(12.0, gt=0)
    shape: float = Field(1.0, gt=0)
    hosts: int = Field(2, ge=1)
    trials: int = Field(400, ge=1)
    seed: int = 1
    strategy: str = Field("farm", pattern="^(farm|fixed|bayesect)$")
    soak_hours: float = Field(24.0, gt=0)
    false_crash_rate: float = Field(0.0, ge=0, description="unrelated crashes per hour")
    overhead_hours: float = Field(0.25, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    max_hours: float = Field(2000.0, gt=0, description="wall-clock budget per trial")


class Summary(BaseModel):
    accuracy: float
    median_hours: float
    mean_hours: float
    p90_hours: float
    machine_hours_mean: float


@dataclass
class _Host:
    name: str
    kernel: int | None = None
    boot: str | None = None
    soak_start: float = 0.0  # wall-clock time the boot came up
    crash_at: float = math.inf
    unrelated_at: float = math.inf
    end_at: float = math.inf  # planned end; inf when idle
    busy_since: float = 0.0

    @property
    def busy(self) -> bool:
        return self.end_at < math.inf

    def uptime(self, now: float) -> float:
        return max(0.0, now - self.soak_start)


def make_strategy(cfg: SimConfig) -> Strategy:
    if cfg.strategy == "fixed":
        return FixedSoak(cfg.patches, cfg.soak_hours)
    if cfg.strategy == "bayesect":
        return Bayesect(cfg.patches, cfg.soak_hours, cfg.confidence)
    settings = Settings(confidence=cfg.confidence, overhead_hours=cfg.overhead_hours)
    return Engine(cfg.patches, settings)


@dataclass(frozen=True)
class Truth:
    """What the simulated farm knows and the strategy must find out."""

    culprit: int  # kernels k >= culprit are bad; 0 and N+1 are allowed (no culprit)
    scale: float  # Weibull scale of the crash time since boot on a bad kernel, hours
    shape: float

    @classmethod
    def draw(cls, cfg: SimConfig, rng: np.random.Generator) -> Truth:
        scale = cfg.mttf_hours / math.gamma(1.0 + 1.0 / cfg.shape)
        return cls(int(rng.integers(1, cfg.patches + 1)), scale, cfg.shape)


class Trial:
    """One bisection against a simulated farm, from the strategy's current state."""

    def __init__(
        self,
        cfg: SimConfig,
        rng: np.random.Generator,
        strategy: Strategy,
        truth: Truth,
        host_prefix: str = "h",  # another prefix keeps a rollout's boots apart from real ones
    ) -> None:
        self.cfg, self.rng, self.strategy = cfg, rng, strategy
        self.culprit, self.scale, self.shape = truth.culprit, truth.scale, truth.shape
        self.hosts = [_Host(f"{host_prefix}{i}") for i in range(cfg.hosts)]
        self.now = 0.0
        self.machine_hours = 0.0
        self.boots = 0

    def _crash_delay(self, kernel: int) -> float:
        bad = kernel >= self.culprit
        return float(self.scale * self.rng.weibull(self.shape)) if bad else math.inf

    def _unrelated_delay(self) -> float:
        rate = self.cfg.false_crash_rate
        return float(self.rng.exponential(1.0 / rate)) if rate > 0 else math.inf

    def _in_flight(self) -> list[InFlight]:
        return [
            InFlight(h.name, h.kernel, h.boot, h.uptime(self.now), h.end_at - h.soak_start)
            for h in self.hosts
            if h.busy and h.kernel is not None and h.boot is not None
        ]

    def _free(self) -> list[FreeHost]:
        return [
            FreeHost(h.name, h.kernel, h.boot, h.uptime(self.now)) for h in self.hosts if not h.busy
        ]

    def _end(self, h: _Host, outcome: Outcome) -> None:
        assert h.kernel is not None and h.boot is not None
        self.strategy.record(Evidence(h.kernel, h.name, h.boot, h.uptime(self.now), outcome))
        self.machine_hours += self.now - h.busy_since
        h.end_at = math.inf
        if outcome is not Outcome.CLEAN:
            h.kernel = h.boot = None  # the boot is gone

    def _start(self, test: Test) -> None:
        h = next(x for x in self.hosts if x.name == test.host)
        h.busy_since = self.now
        if test.reboot or h.kernel != test.kernel or h.boot is None:
            self.boots += 1
            h.kernel, h.boot = test.kernel, f"b{self.boots}"
            h.soak_start = self.now + self.cfg.overhead_hours
            h.crash_at = h.soak_start + self._crash_delay(test.kernel)
            h.unrelated_at = h.soak_start + self._unrelated_delay()
        h.end_at = max(self.now, h.soak_start) + test.hours

    def first_crash(self) -> None:
        """The failed run that starts a bisection: the full series crashed on one host."""
        first = self.scale * self.rng.weibull(self.shape)
        self.strategy.record(
            Evidence(self.cfg.patches, self.hosts[0].name, "b0", first, Outcome.MATCHING)
        )

    def run(self) -> tuple[bool, float]:
        """(named the right patch, wall-clock hours)."""
        while True:
            for r in self.strategy.pointless(self._in_flight()):
                self._end(next(h for h in self.hosts if h.name == r.host), Outcome.CLEAN)
            decision = self.strategy.decide(budget_exhausted=self.now >= self.cfg.max_hours)
            if decision.done:
                for h in self.hosts:
                    if h.busy:
                        self._end(h, Outcome.CLEAN)
                return decision.culprit == self.culprit, self.now
            for test in self.strategy.plan(self._free(), self._in_flight()):
                self._start(test)
            self._step()

    def _step(self) -> None:
        busy = [h for h in self.hosts if h.busy]
        if not busy:
            raise RuntimeError("the strategy left every host idle without deciding")
        h = min(busy, key=lambda x: min(x.crash_at, x.unrelated_at, x.end_at))
        t = min(h.crash_at, h.unrelated_at, h.end_at)
        self.now = t
        if t == h.crash_at:
            self._end(h, Outcome.MATCHING)
        elif t == h.unrelated_at:
            self._end(h, Outcome.UNRELATED)
        else:
            self._end(h, Outcome.CLEAN)


def simulate(
    cfg: SimConfig,
    progress: Callable[[int, int], None] | None = None,
    strategy: Callable[[SimConfig], Strategy] = make_strategy,
) -> Summary:
    """Run cfg.trials independent trials; deterministic for cfg.seed.

    `strategy` builds each trial's strategy: benchmarks pass engines with other
    settings or priors through it to measure them against the same simulated farm.
    """
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.trials)
    correct, hours, machine = [], [], []
    for i, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        trial = Trial(cfg, rng, strategy(cfg), Truth.draw(cfg, rng))
        trial.first_crash()
        ok, h = trial.run()
        correct.append(ok)
        hours.append(h)
        machine.append(trial.machine_hours)
        if progress is not None:
            progress(i + 1, cfg.trials)
    arr = np.asarray(hours)
    return Summary(
        accuracy=float(np.mean(correct)),
        median_hours=round(float(np.median(arr)), 2),
        mean_hours=round(float(arr.mean()), 2),
        p90_hours=round(float(np.percentile(arr, 90)), 2),
        machine_hours_mean=round(float(np.mean(machine)), 2),
    )
