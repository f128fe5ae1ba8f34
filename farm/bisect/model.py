# SPDX-License-Identifier: Apache-2.0
"""The likelihood of soak evidence under each first-bad-patch hypothesis.

Hypotheses are indexed c = 0..N+1: kernel k (k patches applied) is bad when k >= c.
c = 1..N names patch c as the first bad one; c = 0 means the base kernel is already
bad and c = N+1 that no kernel is (the failure was a fluke); both are "no culprit".

On a bad kernel a matching crash has a Weibull hazard in the uptime u since boot:
cumulative hazard lambda * u**shape. The rate lambda is unknown and integrated out
against a Gamma prior (conjugate, so in closed form); the shape is integrated over a
small grid. Per boot the exposure is u**shape, so ten 1-hour boots weigh far less
than one 10-hour boot when the hazard rises with uptime. Good kernels see matching
crashes only at a small background rate (a mis-attributed title).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

Array = NDArray[np.float64]


def logsumexp(x: Array, axis: int | None = None) -> Array:
    """log(sum(exp(x))) without overflow; scipy's is ten times slower on small arrays."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return np.asarray(out.squeeze() if axis is None else np.squeeze(out, axis=axis))


@dataclass(frozen=True)
class Prior:
    """What the engine believes before any evidence; never the simulator's truth."""

    shapes: tuple[float, ...] = (0.7, 1.0, 1.5, 2.0, 3.0, 4.0)
    shape_weights: tuple[float, ...] = (1.0, 2.0, 1.0, 1.0, 1.0, 1.0)
    rate_shape: float = 1.0  # Gamma shape a of lambda: broad, one pseudo-crash
    scale_hours: float = 24.0  # Gamma rate b = scale**shape: typical time to crash
    background_per_hour: float = 5e-5  # matching crash on a good kernel (mis-attributed)
    counter_false_positive: float = 0.05
    counter_false_negative: float = 0.2
    base_bad: float = 0.02  # prior of hypothesis c = 0
    fluke: float = 0.03  # prior of hypothesis c = N+1
    patch_weights: tuple[float, ...] = field(default=())  # relative, per patch 1..N

    @classmethod
    def told_the_rate(cls, mttf_hours: float) -> Prior:
        """A yardstick, not a prior to bisect with: memoryless crashes at a known MTTF
        (1000 pseudo-crashes pin the Gamma), for measuring what learning the rate costs."""
        return cls(
            shapes=(1.0,), shape_weights=(1.0,), rate_shape=1000.0, scale_hours=1000.0 * mttf_hours
        )

    def log_hypothesis_prior(self, n: int) -> Array:
        weights = np.asarray(self.patch_weights or (1.0,) * n, dtype=np.float64)
        if weights.shape != (n,) or np.any(weights <= 0):
            raise ValueError(f"patch_weights needs {n} positive numbers, got {weights}")
        inner = (1.0 - self.base_bad - self.fluke) * weights / weights.sum()
        return np.asarray(np.log(np.concatenate([[self.base_bad], inner, [self.fluke]])))

    @property
    def shape_array(self) -> Array:
        return np.asarray(self.shapes, dtype=np.float64)

    @property
    def log_shape_prior(self) -> Array:
        w = np.asarray(self.shape_weights, dtype=np.float64)
        return np.asarray(np.log(w / w.sum()))

    @property
    def gamma_rate(self) -> Array:
        """Gamma rate b per shape, so the prior time scale means the same for every shape."""
        return np.power(self.scale_hours, self.shape_array)


@dataclass(frozen=True)
class KernelStats:
    """Sufficient statistics per kernel 0..N (rows) and per shape (columns)."""

    exposure: Array  # (K, G) sum over boots of uptime**shape
    log_density: Array  # (K, G) sum over matching crashes of log(shape * u**(shape-1))
    crashes: Array  # (K,) matching crashes
    hours: Array  # (K,) pooled uptime, for the memoryless background rate
    counter_fail: Array  # (K,)
    counter_pass: Array  # (K,)

    @classmethod
    def from_boots(
        cls,
        n: int,
        prior: Prior,
        kernel: NDArray[np.int64],
        uptime: Array,
        crashed: NDArray[np.bool_],
        counter_kernel: NDArray[np.int64],
        counter_failed: NDArray[np.bool_],
    ) -> KernelStats:
        shapes = prior.shape_array
        k = n + 1
        u = np.maximum(uptime, 1e-6)[:, None]
        exposure = np.zeros((k, shapes.size))
        np.add.at(exposure, kernel, u**shapes)
        log_density = np.zeros((k, shapes.size))
        np.add.at(log_density, kernel[crashed], np.log(shapes) + (shapes - 1) * np.log(u[crashed]))
        return cls(
            exposure=exposure,
            log_density=log_density,
            crashes=np.bincount(kernel[crashed], minlength=k).astype(np.float64),
            hours=np.bincount(kernel, weights=uptime, minlength=k).astype(np.float64),
            counter_fail=np.bincount(counter_kernel[counter_failed], minlength=k).astype(float),
            counter_pass=np.bincount(counter_kernel[~counter_failed], minlength=k).astype(float),
        )


def bad_sums(per_kernel: Array) -> Array:
    """For each hypothesis c = 0..N+1, the sum over the bad kernels k >= c."""
    rev = np.cumsum(per_kernel[::-1], axis=0)[::-1]
    return np.concatenate([rev, np.zeros((1, *per_kernel.shape[1:]))], axis=0)


@dataclass
class Joint:
    """log P(evidence, c, shape) and the pieces planning reuses."""

    log_joint: Array  # (C, G)
    crashes_bad: Array  # (C,) matching crashes on the bad kernels
    exposure_bad: Array  # (C, G)

    @cached_property
    def posterior(self) -> Array:
        marginal = logsumexp(self.log_joint, axis=1)
        return np.asarray(np.exp(marginal - logsumexp(marginal)))

    @cached_property
    def weights(self) -> Array:
        """Normalised joint posterior over (hypothesis, shape)."""
        return np.asarray(np.exp(self.log_joint - logsumexp(self.log_joint)))


def joint(stats: KernelStats, prior: Prior) -> Joint:
    n = stats.crashes.size - 1
    a, b = prior.rate_shape, prior.gamma_rate[None, :]
    m = bad_sums(stats.crashes)[:, None]
    e = bad_sums(stats.exposure)
    # Gamma-Poisson marginal: b^a Γ(a+m) / (Γ(a) (b+E)^(a+m)); exactly 1 with no bad kernel.
    log_rate = a * np.log(b) + gammaln(a + m) - gammaln(a) - (a + m) * np.log(b + e)
    log_crash_times = bad_sums(stats.log_density)
    eps = prior.background_per_hour
    good_crashes = stats.crashes.sum() - m
    good_hours = stats.hours.sum() - bad_sums(stats.hours)[:, None]
    log_background = good_crashes * np.log(eps) - eps * good_hours
    fp, fn = prior.counter_false_positive, prior.counter_false_negative
    fail_bad, pass_bad = bad_sums(stats.counter_fail), bad_sums(stats.counter_pass)
    log_counter = (
        fail_bad * np.log1p(-fn)
        + pass_bad * np.log(fn)
        + (stats.counter_fail.sum() - fail_bad) * np.log(fp)
        + (stats.counter_pass.sum() - pass_bad) * np.log1p(-fp)
    )
    log_joint = (
        prior.log_hypothesis_prior(n)[:, None]
        + prior.log_shape_prior[None, :]
        + log_rate
        + log_crash_times
        + log_background
        + log_counter[:, None]
    )
    return Joint(log_joint=log_joint, crashes_bad=m[:, 0], exposure_bad=e)


def survival(j: Joint, prior: Prior, extra_exposure: Array) -> Array:
    """P(no matching crash | c, shape) for extra exposure (..., G) on a bad kernel.

    The posterior predictive of the Gamma-distributed rate: ((b+E)/(b+E+Δ))^(a+m).
    Returns (..., C, G).
    """
    a_post = prior.rate_shape + j.crashes_bad[:, None]
    b_post = prior.gamma_rate[None, :] + j.exposure_bad
    delta = extra_exposure[..., None, :]
    return np.asarray(np.exp(a_post * (np.log(b_post) - np.log(b_post + delta))))
