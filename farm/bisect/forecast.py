# SPDX-License-Identifier: Apache-2.0
"""Expected hours left: the rest of a bisection simulated forward from its posterior.

Each rollout draws a world the evidence allows (a first bad patch and hazard shape from
the engine's joint posterior, then a crash rate from that hypothesis's Gamma posterior),
copies the engine, and lets it drive the simulated farm of farm.bisect.simulate until it
decides. The spread of the rollouts' wall-clock hours is the forecast. Simplification:
every host starts free (runs in flight are counted as if restarted now), so the figure
leans long by up to one soak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.bisect import state
from farm.bisect.engine import Engine
from farm.bisect.simulate import SimConfig, Trial, Truth


@dataclass(frozen=True)
class Forecast:
    mean_hours: float  # the expected wall-clock hours until the engine decides
    median_hours: float
    p90_hours: float
    rollouts: int


def draw_truth(engine: Engine, rng: np.random.Generator) -> Truth:
    """A (culprit, scale, shape) world drawn from the engine's posterior."""
    j, prior = engine.joint, engine.settings.prior
    flat = j.weights.ravel()
    c, g = np.unravel_index(int(rng.choice(flat.size, p=flat / flat.sum())), j.weights.shape)
    shape = float(prior.shape_array[g])
    a = prior.rate_shape + j.crashes_bad[c]
    b = prior.gamma_rate[g] + j.exposure_bad[c, g]
    rate = rng.gamma(a, 1.0 / b)  # cumulative hazard rate * uptime**shape
    return Truth(int(c), float(rate ** (-1.0 / shape)), shape)


def hours_left(
    engine: Engine, hosts: int, rollouts: int = 24, seed: int = 0, max_hours: float = 2000.0
) -> Forecast:
    """Forecast the wall-clock hours until `engine` decides, with `hosts` hosts testing.

    For a crash regression only: the simulated farm produces crashes, not counter
    judgements, so a counter's bisection would never decide in it.
    """
    if engine.settings.kind != "crash":
        raise ValueError(f"only a crash bisection can be forecast, not a {engine.settings.kind}")
    if engine.decide().done:
        return Forecast(0.0, 0.0, 0.0, 0)
    cfg = SimConfig(
        patches=engine.n,
        hosts=max(hosts, 1),
        overhead_hours=engine.settings.overhead_hours,
        max_hours=max_hours,
    )
    saved = state.dump(engine)
    hours = []
    for child in np.random.SeedSequence(seed).spawn(rollouts):
        rng = np.random.default_rng(child)
        trial = Trial(cfg, rng, state.load(saved), draw_truth(engine, rng), "forecast-")
        hours.append(trial.run()[1])
    arr = np.asarray(hours)
    return Forecast(
        mean_hours=round(float(arr.mean()), 1),
        median_hours=round(float(np.median(arr)), 1),
        p90_hours=round(float(np.percentile(arr, 90)), 1),
        rollouts=rollouts,
    )
