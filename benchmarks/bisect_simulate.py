# SPDX-License-Identifier: Apache-2.0
"""Side-by-side bisection strategies on the simulated farm (issue 8's measurements).

    .venv/bin/python benchmarks/bisect_simulate.py [--trials 400] [--jobs 2] [--json]

Prints one row per (scenario, strategy): accuracy, wall-clock hours (median, mean,
p90), machine-hours, and the seconds the row took to simulate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from farm.bisect.simulate import SimConfig, simulate

SCENARIOS: dict[str, dict[str, Any]] = {
    "seed (MTTF 12h, shape 1, 2 hosts)": {},
    "true MTTF 48h": {"mttf_hours": 48.0},
    "wear-out, shape 3": {"shape": 3.0},
    "unrelated crash / 100h": {"false_crash_rate": 0.01},
    "4 hosts": {"hosts": 4},
    "MTTF 2h": {"mttf_hours": 2.0},
}
STRATEGIES: dict[str, dict[str, Any]] = {
    "farm": {"strategy": "farm"},
    "fixed 24h": {"strategy": "fixed", "soak_hours": 24.0},
    "fixed 36h": {"strategy": "fixed", "soak_hours": 36.0},
    "bayesect 24h": {"strategy": "bayesect", "soak_hours": 24.0},
}


def one(job: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    scenario, strategy, settings = job
    start = time.perf_counter()
    summary = simulate(SimConfig(**settings))
    return {
        "scenario": scenario,
        "strategy": strategy,
        **summary.model_dump(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    jobs = [
        (scenario, name, {"trials": args.trials, "seed": args.seed, **sc, **st})
        for scenario, sc in SCENARIOS.items()
        for name, st in STRATEGIES.items()
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one, job) for job in jobs]
        for done in as_completed(futures):  # progress: a row as soon as it is ready
            r = done.result()
            print(f"  done: {r['scenario']} / {r['strategy']} in {r['seconds']} s", file=sys.stderr)
        rows = [f.result() for f in futures]
    total = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps({"rows": rows, "total_seconds": total, "jobs": args.jobs}, indent=2))
        return
    print(
        f"{'scenario':<36}{'strategy':<14}{'acc':>7}{'median':>8}{'mean':>8}"
        f"{'p90':>8}{'mach-h':>8}{'sec':>7}"
    )
    for r in rows:
        print(
            f"{r['scenario']:<36}{r['strategy']:<14}{r['accuracy']:>7.1%}"
            f"{r['median_hours']:>8.1f}{r['mean_hours']:>8.1f}{r['p90_hours']:>8.1f}"
            f"{r['machine_hours_mean']:>8.1f}{r['seconds']:>7.1f}"
        )
    print(f"total {total} s with {args.jobs} processes, {args.trials} trials per row")


if __name__ == "__main__":
    main()
