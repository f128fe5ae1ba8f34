# SPDX-License-Identifier: Apache-2.0
"""Exporter at farm scale: ingest rate and one /metrics scrape with N hosts.

The store is filled as by N hosts sending all of /proc/vmstat and /proc/meminfo every
10 s (field names and magnitudes read from this machine's /proc, values varied per
host and round). A "sample" is one value of one field of one host at one time, as
Prometheus counts samples; rows are (host, timestamp) readings.

    .venv/bin/python benchmarks/exporter_scale.py --hosts 1000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from farm.config import FarmConfig, HostConfig
from farm.metrics.exporter import Exposition
from farm.soak.sampler import Reading, _fields
from farm.store import Store
from farm.store.samples import KeyCache, add_samples


def readings(hosts: int, ts: float, rng: random.Random) -> list[tuple[str, int | None, Reading]]:
    vmstat = _fields(Path("/proc/vmstat").read_text(), meminfo=False)
    meminfo = _fields(Path("/proc/meminfo").read_text(), meminfo=True)
    out: list[tuple[str, int | None, Reading]] = []
    for i in range(hosts):
        jitter = rng.randrange(1, 1000)
        out.append(
            (
                f"host{i:04d}",
                None,
                Reading(
                    ts=ts,
                    phase="soak",
                    boot_id=f"{i:08x}-boot",
                    uptime=ts % 100000,
                    tainted=0,
                    vmstat={k: v + jitter * (n % 7) for n, (k, v) in enumerate(vmstat.items())},
                    meminfo={k: max(0, v - jitter * 4096) for k, v in meminfo.items()},
                ),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6, help="10 s sampling rounds to store")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        hosts = [HostConfig(name=f"host{i:04d}", kind="ssh") for i in range(args.hosts)]
        config = FarmConfig(data_dir=Path(tmp), hosts=hosts)
        store = Store(config.db_url)
        keys = KeyCache()
        batches = [readings(args.hosts, 1.7e9 + 10 * r, rng) for r in range(args.rounds)]
        values = 0
        started = time.perf_counter()
        for batch in batches:
            with store.session() as session:
                values += add_samples(session, keys, batch)
        ingest = time.perf_counter() - started
        exposition = Exposition(config, store)
        scrapes = []
        for _ in range(3):
            t0 = time.perf_counter()
            body = exposition.render()
            scrapes.append(time.perf_counter() - t0)
        store.dispose()
    result = {
        "hosts": args.hosts,
        "scrape_seconds": round(statistics.median(scrapes), 3),
        "scrape_bytes": len(body),
        "samples_per_second": round(values / ingest),
        "rows_per_second": round(args.hosts * args.rounds / ingest),
        "values_per_row": values // (args.hosts * args.rounds),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
