# SPDX-License-Identifier: Apache-2.0
"""Where the seed model's median goes when the engine's prior or threshold changes.

    .venv/bin/python benchmarks/bisect_frontier.py [--trials 400] [--seeds 1,2] [--jobs 2]

Issue 8 asks for three things at once: the seed model (MTTF 12 h) at >= 99% accuracy
with a median <= 90 h, and >= 95% accuracy when the bug is four times rarer (MTTF 48 h).
Each row runs the real engine with one variant against the simulated farm; the last two
are a yardstick, not a strategy: an engine told the true crash rate, which no real
bisection is.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from farm.bisect.engine import Engine, Settings
from farm.bisect.model import Prior
from farm.bisect.simulate import SimConfig, simulate

SCENARIOS: dict[str, dict[str, Any]] = {"MTTF 12h": {}, "MTTF 48h": {"mttf_hours": 48.0}}


def _engine(
    confidence: float | None = None, told_the_rate: bool = False, **prior: Any
) -> Callable[[SimConfig], Engine]:
    def make(cfg: SimConfig) -> Engine:
        base = Prior.told_the_rate(cfg.mttf_hours) if told_the_rate else Prior()
        settings = Settings(
            confidence=confidence or cfg.confidence,
            overhead_hours=cfg.overhead_hours,
            prior=replace(base, **prior),
        )
        return Engine(cfg.patches, settings)

    return make


VARIANTS: dict[str, Callable[[SimConfig], Engine]] = {
    "engine as committed (0.95)": _engine(),
    "confidence 0.93": _engine(0.93),
    "confidence 0.90": _engine(0.90),
    "rate prior a=0.5, b=12 h": _engine(rate_shape=0.5, scale_hours=12.0),
    "rate prior centred on 12 h": _engine(rate_shape=2.0, scale_hours=24.0),
    "shapes >= 1 only": _engine(shapes=(1.0, 1.5, 2.0, 3.0, 4.0), shape_weights=(2, 1, 1, 1, 1)),
    "told the rate, 0.95": _engine(0.95, told_the_rate=True),
    "told the rate, 0.99": _engine(0.99, told_the_rate=True),
}


def one(job: tuple[str, str, int, int]) -> dict[str, Any]:
    variant, scenario, seed, trials = job
    start = time.perf_counter()
    cfg = SimConfig(trials=trials, seed=seed, **SCENARIOS[scenario])
    summary = simulate(cfg, strategy=VARIANTS[variant])
    return {
        "variant": variant,
        "scenario": scenario,
        "seed": seed,
        **summary.model_dump(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(v, sc, seed, args.trials) for v in VARIANTS for seed in seeds for sc in SCENARIOS]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, jobs))
    print(f"{'':<35}{'MTTF 12h':-^24}  {'MTTF 48h':-^16}")
    print(f"{'variant':<30}{'seed':>5}{'acc':>8}{'median':>8}{'p90':>8}  {'acc':>8}{'median':>8}")
    for fast, slow in zip(rows[::2], rows[1::2], strict=True):
        print(
            f"{fast['variant']:<30}{fast['seed']:>5}{fast['accuracy']:>8.1%}"
            f"{fast['median_hours']:>8.1f}{fast['p90_hours']:>8.1f}"
            f"  {slow['accuracy']:>8.1%}{slow['median_hours']:>8.1f}"
        )
    total = round(time.perf_counter() - start, 1)
    print(f"total {total} s, {args.jobs} processes, {args.trials} trials a cell", file=sys.stderr)


if __name__ == "__main__":
    main()
