# SPDX-License-Identifier: Apache-2.0
"""`farm up` on a laptop: how long until the farm is up, how long a killed worker is
away, how long `farm down` takes. Real processes: redis-server, a Celery worker, beat
and the exporter, on a fresh farm.toml in a temporary directory (no QEMU host boots).

    .venv/bin/python benchmarks/farm_up.py --rounds 3 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm.supervisor import UpState, read_state


def farm(config: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    subprocess.run(
        [sys.executable, "-m", "farm", "--config", str(config), *args],
        check=True, capture_output=True, env=env,
    )  # fmt: skip


def worker_pid(state: UpState | None) -> int | None:
    if state is None:
        return None
    return next(s.pid for s in state.services if s.name == "worker")


def one_round(root: Path) -> dict[str, float]:
    config = root / "farm.toml"
    data = root / "data"
    config.write_text(f'data_dir = "{data}"\n')
    started = time.monotonic()
    farm(config, "up")
    up = time.monotonic() - started
    killed = worker_pid(read_state(data))
    assert killed is not None
    time.sleep(2)  # let it start properly: a worker that dies at once is backed off
    os.kill(killed, signal.SIGKILL)
    gone = time.monotonic()
    while worker_pid(read_state(data)) in (None, killed):
        time.sleep(0.05)
    back = time.monotonic() - gone
    started = time.monotonic()
    farm(config, "down")
    return {
        "up_seconds": up,
        "worker_back_seconds": back,
        "down_seconds": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="farm-up-bench-") as root:
            rounds.append(one_round(Path(root)))
    summary = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    if args.json:
        print(json.dumps({"rounds": args.rounds, "median": summary}, indent=2))
        return
    print(f"farm up / kill -9 worker / farm down, median of {args.rounds} rounds:")
    for key, value in summary.items():
        print(f"  {key:20} {value:6.2f}")


if __name__ == "__main__":
    main()
