# SPDX-License-Identifier: Apache-2.0
"""The bisection engine: evidence in, a posterior and the next tests out. No I/O.

A driver (the scheduler, or the simulator) runs this loop::

    engine.record(evidence)                  # a run ended, crashed, or reported uptime
    for run in engine.pointless(in_flight):  # stop runs whose outcome no longer matters
        ...
    decision = engine.decide()               # done? which patch, how sure
    for test in engine.plan(free, in_flight): # what each free host should run next
        ...

Evidence is per boot: a later report for the same (host, boot) supersedes the earlier
one (the boot has simply stayed up longer), so periodic uptime updates are welcome.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import entr

from farm.bisect import model
from farm.bisect.model import Array, Prior


class Outcome(enum.StrEnum):
    CLEAN = "clean"  # no crash up to the uptime
    MATCHING = "matching"  # the crash being bisected
    UNRELATED = "unrelated"  # another crash: ends the boot, says ~nothing about the culprit
    COUNTER_FAIL = "counter_fail"  # the counter regressed on this run
    COUNTER_PASS = "counter_pass"  # noqa: S105 - an outcome, not a password
    UNTESTABLE = "untestable"  # does not build or boot for reasons of ours: skip the kernel


@dataclass(frozen=True)
class Evidence:
    kernel: int  # patches applied, 0 is the base
    host: str
    boot: str
    uptime_hours: float
    outcome: Outcome
    run_id: int | None = None


@dataclass(frozen=True)
class InFlight:
    """A run in progress: kernel booted on host, planned to reach planned_uptime hours."""

    host: str
    kernel: int
    boot: str
    uptime_hours: float
    planned_uptime_hours: float
    run_id: int | None = None


@dataclass(frozen=True)
class FreeHost:
    """A host ready for work; boot/kernel set when its current boot may be extended."""

    host: str
    kernel: int | None = None
    boot: str | None = None
    uptime_hours: float = 0.0


@dataclass(frozen=True)
class Test:
    host: str
    kernel: int
    hours: float  # more uptime to soak
    reboot: bool  # False: keep the current boot running (no build/boot overhead)
    info_per_hour: float  # expected bits per machine-hour, overhead included


@dataclass(frozen=True)
class Decision:
    done: bool
    culprit: int | None  # first bad patch, when done with one
    confidence: float  # posterior of the culprit (or of "no culprit")
    credible_set: list[int]  # patches holding `confidence` of the mass; 0 = no culprit
    no_culprit: float
    reason: str


@dataclass
class Settings:
    confidence: float = 0.95
    overhead_hours: float = 0.25  # build + boot before a fresh test starts
    durations: tuple[float, ...] = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 36.0, 48.0)
    reproduce: int = 2  # matching crashes wanted on the failing kernel before bisecting
    plausible_shape: float = 0.05  # shapes below this posterior weight do not block stopping
    min_detection: float = 0.9  # P(the kernel before the culprit would have shown it)
    settled: float = 0.01  # a run on a kernel with P(bad) outside [s, 1-s] is pointless
    counter_hours: float = 2.0  # how long a counter judgement takes
    kind: str = "crash"  # "crash" or "counter"
    prior: Prior = field(default_factory=Prior)


@dataclass
class _Boot:
    kernel: int
    uptime: float
    outcome: Outcome


def _entropy(p: Array) -> Array:
    """Entropy in bits over the last axis of unnormalised masses."""
    p = np.maximum(p, 0.0)  # rounding can leave -1e-18
    total = np.maximum(p.sum(axis=-1), 1e-300)
    # H = (sum of -p ln p) / T + ln T, in nats; entr is -x ln x with entr(0) = 0
    return np.asarray((entr(p).sum(axis=-1) / total + np.log(total)) / np.log(2.0))


class Engine:
    """Posterior over the first bad patch of an N-patch series."""

    def __init__(self, patches: int, settings: Settings | None = None) -> None:
        if patches < 1:
            raise ValueError(f"a bisection needs at least one patch, got {patches}")
        self.n = patches
        self.settings = settings or Settings()
        self.log: list[Evidence] = []
        self._boots: dict[tuple[str, str], _Boot] = {}
        self._counters: list[tuple[int, bool]] = []
        self.untestable: set[int] = set()
        self.failing_kernel: int | None = None
        self._joint: model.Joint | None = None

    # -- evidence ------------------------------------------------------------------

    def record(self, ev: Evidence) -> None:
        if not 0 <= ev.kernel <= self.n:
            raise ValueError(f"kernel {ev.kernel} is outside 0..{self.n}")
        if ev.uptime_hours < 0 or not np.isfinite(ev.uptime_hours):
            raise ValueError(f"uptime {ev.uptime_hours!r} hours is not a duration")
        self.log.append(ev)
        self._joint = None
        if ev.outcome is Outcome.UNTESTABLE:
            self.untestable.add(ev.kernel)
            return
        if ev.outcome in (Outcome.COUNTER_FAIL, Outcome.COUNTER_PASS):
            self._counters.append((ev.kernel, ev.outcome is Outcome.COUNTER_FAIL))
        else:
            key = (ev.host, ev.boot)
            old = self._boots.get(key)
            if old is not None and old.kernel != ev.kernel:
                raise ValueError(f"boot {ev.boot} on {ev.host} was kernel {old.kernel}")
            if old is None or old.outcome is Outcome.CLEAN:
                self._boots[key] = _Boot(ev.kernel, max(ev.uptime_hours, 0.0), ev.outcome)
        if self.failing_kernel is None and ev.outcome in (
            Outcome.MATCHING,
            Outcome.COUNTER_FAIL,
        ):
            self.failing_kernel = ev.kernel

    def _stats(self, boots: Sequence[_Boot]) -> model.KernelStats:
        counters = self._counters
        return model.KernelStats.from_boots(
            self.n,
            self.settings.prior,
            np.array([b.kernel for b in boots], dtype=np.int64),
            np.array([b.uptime for b in boots], dtype=np.float64),
            np.array([b.outcome is Outcome.MATCHING for b in boots], dtype=bool),
            np.array([k for k, _ in counters], dtype=np.int64),
            np.array([f for _, f in counters], dtype=bool),
        )

    def _joint_with(self, boots: Sequence[_Boot]) -> model.Joint:
        return model.joint(self._stats(boots), self.settings.prior)

    @property
    def joint(self) -> model.Joint:
        if self._joint is None:
            self._joint = self._joint_with(list(self._boots.values()))
        return self._joint

    def posterior(self) -> Array:
        """P(c) for c = 0..N+1 (0: bad already in the base, N+1: a fluke)."""
        return self.joint.posterior

    def patch_posterior(self) -> tuple[list[float], float]:
        """P(patch i is the first bad one) for i = 1..N, and P(no culprit)."""
        p = self.posterior()
        return [float(x) for x in p[1:-1]], float(p[0] + p[-1])

    def p_bad(self, kernel: int) -> float:
        return float(self.posterior()[: kernel + 1].sum())

    def matching(self, kernel: int) -> int:
        n = sum(b.kernel == kernel and b.outcome is Outcome.MATCHING for b in self._boots.values())
        return n + sum(k == kernel and f for k, f in self._counters)

    # -- stopping ------------------------------------------------------------------

    def detection(self, kernel: int, culprit: int) -> float:
        """P(kernel would have failed in its clean uptime, were it bad), rate from `culprit`.

        Judged as if the hazard did not rise with uptime (shapes <= 1 only): a guard
        against a few regular crash times making long clean boots look conclusive.
        """
        if self.settings.kind == "counter":
            passes = sum(k == kernel and not f for k, f in self._counters)
            return float(1.0 - self.settings.prior.counter_false_negative**passes)
        shapes = self.settings.prior.shape_array
        clean = [b.uptime for b in self._boots.values() if b.kernel == kernel]
        exposure = np.power(np.asarray(clean)[:, None], shapes).sum(axis=0)
        j = self.joint
        w = np.where(shapes <= 1.0, j.weights[culprit], 0.0)
        surv = model.survival(j, self.settings.prior, exposure)[culprit]
        return float(1.0 - (w * surv).sum() / w.sum())

    def robust_confidence(self, c: int) -> float:
        """P(c) under the least favourable plausible hazard shape.

        A few regular crash times favour a steep wear-out shape, under which long clean
        boots look conclusive; stopping needs the confidence under every shape the
        evidence has not ruled out (posterior weight >= settings.plausible_shape).
        """
        lj = self.joint.log_joint
        per_shape = np.exp(lj - model.logsumexp(lj, axis=0)[None, :])[c]
        shape_weight = self.joint.weights.sum(axis=0)
        return float(per_shape[shape_weight >= self.settings.plausible_shape].min())

    def decide(self, budget_exhausted: bool = False) -> Decision:
        s = self.settings
        patches, none = self.patch_posterior()
        top = int(np.argmax(patches)) + 1
        conf = patches[top - 1]
        credible = self._credible_set(patches, none)
        found = self.robust_confidence(top) >= s.confidence and self.matching(top) > 0
        if found and self.detection(top - 1, top) >= s.min_detection:
            return Decision(True, top, conf, credible, none, f"patch {top} found")
        if none >= s.confidence and self.matching(self.n) == 0:
            return Decision(True, None, none, [0], none, "the failure does not reproduce")
        if budget_exhausted:
            return Decision(True, None, conf, credible, none, "budget exhausted")
        return Decision(False, None, conf, credible, none, "more evidence needed")

    def _credible_set(self, patches: list[float], none: float) -> list[int]:
        masses = [(none, 0)] + [(p, i + 1) for i, p in enumerate(patches)]
        chosen: list[int] = []
        total = 0.0
        for p, i in sorted(masses, reverse=True):
            chosen.append(i)
            total += p
            if total >= self.settings.confidence:
                break
        return sorted(chosen)

    # -- planning ------------------------------------------------------------------

    def pointless(self, in_flight: Sequence[InFlight]) -> list[InFlight]:
        """Runs whose kernel is settled (surely bad, or surely good) by now."""
        s = self.settings.settled
        p = np.cumsum(self.posterior())
        return [r for r in in_flight if not s <= p[r.kernel] <= 1 - s]

    def plan(self, free: Sequence[FreeHost], in_flight: Sequence[InFlight]) -> list[Test]:
        """A test for each free host, assuming the runs in flight survive to their end."""
        boots = dict(self._boots)
        for r in in_flight:
            boots[(r.host, r.boot)] = _Boot(r.kernel, r.planned_uptime_hours, Outcome.CLEAN)
        tests: list[Test] = []
        for host in free:
            test = self._best_test(host, boots)
            if test is None:
                continue
            tests.append(test)
            key = (host.host, host.boot or "") if not test.reboot else (host.host, "planned")
            start = host.uptime_hours if not test.reboot else 0.0
            boots[key] = _Boot(test.kernel, start + test.hours, Outcome.CLEAN)
        return tests

    def _reproducing(self) -> bool:
        fk = self.failing_kernel
        return fk is not None and self.matching(fk) < self.settings.reproduce

    def _best_test(self, host: FreeHost, boots: dict[tuple[str, str], _Boot]) -> Test | None:
        s = self.settings
        if self._reproducing():
            assert self.failing_kernel is not None
            extend = host.kernel == self.failing_kernel and host.boot is not None
            return Test(host.host, self.failing_kernel, max(s.durations), not extend, 0.0)
        j = self._joint_with(list(boots.values()))
        w = j.weights
        testable = np.array([k not in self.untestable for k in range(self.n + 1)])
        durations = np.asarray((s.counter_hours,) if s.kind == "counter" else s.durations)
        fresh = self._info(j, w, np.power(durations[:, None], s.prior.shape_array), durations)
        rate = fresh / (durations[None, :] + s.overhead_hours)
        rate[~testable] = -1.0
        k, d = np.unravel_index(int(np.argmax(rate)), rate.shape)
        best = Test(host.host, int(k), float(durations[d]), True, float(rate[k, d]))
        if host.kernel is not None and host.boot is not None and s.kind == "crash":
            u0 = host.uptime_hours
            shapes = s.prior.shape_array
            extra = np.power(u0 + durations[:, None], shapes) - np.power(u0, shapes)
            ext = self._info(j, w, extra, durations, host.kernel)[0] / durations
            e = int(np.argmax(ext))
            if ext[e] >= best.info_per_hour:
                best = Test(host.host, host.kernel, float(durations[e]), False, float(ext[e]))
        return best if best.info_per_hour > 0 else None

    def _info(
        self, j: model.Joint, w: Array, extra: Array, durations: Array, kernel: int | None = None
    ) -> Array:
        """Expected bits about c from testing each kernel (rows) for each duration (cols)."""
        s, prior = self.settings, self.settings.prior
        n_hyp = self.n + 2
        kernels = np.arange(self.n + 1) if kernel is None else np.array([kernel])
        bad = kernels[:, None] >= np.arange(n_hyp)[None, :]  # (K, C)
        wc = w.sum(axis=1)
        # P(positive outcome, c) when the kernel is bad / good under c: (D, C) each
        if s.kind == "counter":
            pos_bad = np.broadcast_to((1.0 - prior.counter_false_negative) * wc, (1, n_hyp))
            pos_good = np.broadcast_to(prior.counter_false_positive * wc, (1, n_hyp))
        else:
            surv = model.survival(j, prior, extra)  # (D, C, G)
            pos_bad = wc[None, :] - np.einsum("dcg,cg->dc", surv, w)
            p_bg = -np.expm1(-prior.background_per_hour * durations)
            pos_good = p_bg[:, None] * wc[None, :]
        pos = np.where(bad[:, None, :], pos_bad[None], pos_good[None])  # (K, D, C)
        neg = wc[None, None, :] - pos
        p_pos = pos.sum(axis=-1)
        info = _entropy(wc) - p_pos * _entropy(pos) - (1.0 - p_pos) * _entropy(neg)
        return np.asarray(np.maximum(info, 0.0))
