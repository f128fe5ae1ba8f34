# SPDX-License-Identifier: Apache-2.0
"""The scheduler at farm scale: N simulated hosts soaking through the real path.

N hosts of kind ``sim`` (farm/hosts/sim.py: answered by a model in the worker, no SSH)
each soak one run at a 10 s sample interval. Everything else is what a farm runs: a
private Redis, `farm worker` processes, `farm beat`, `farm api` and `farm exporter`
(scraped every 15 s, as Prometheus would), on SQLite or on a private PostgreSQL.
After a warm-up (every run soaking), the measurement window gives:

- controller_cpu_fraction: CPU seconds of beat + API + exporter per wall second (the
  workers, which would run on the worker machines, are not counted);
- steps_per_second: soak samples stored per second;
- step_latency_p99_seconds: how late a soak step started: from its due time (the
  ETA its message was sent with when the previous step committed, i.e. run_progress's
  due_at) to the moment a worker began it, as each worker logs it (99th percentile;
  the median and the maximum beside it); sample_gap_over_interval_p99_seconds is the
  older, looser figure: a run's consecutive samples' distance less the interval;
- lost_steps: runs no longer stepped at the end (no sample within an overdue period
  and two intervals of the end: a step lost for good, which the reconciler failed to
  re-drive), and runs that ended although they were to soak past the end;
- redriven_steps: steps the reconciler sent again because they were overdue (a lost
  message, or workers too far behind);
- worker_cpu_fraction and worker_cpu_ms_per_step: what the `farm worker` processes
  cost, in cores and per stored sample (where the limit of one machine lies);
- load_average: the machine's 1-minute load at the start and the end of the window
  (other work on the machine shows there).

    .venv/bin/python benchmarks/scheduler_scale.py --hosts 1000 --seconds 120 --json
    .venv/bin/python benchmarks/scheduler_scale.py --hosts 1000 --database postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select

from farm.config import FarmConfig, load_config
from farm.scheduler.api import queue_run
from farm.scheduler.app import get_app
from farm.services import LocalPostgres, LocalServices, free_port
from farm.store import Store
from farm.store.runs import TERMINAL, Run, RunKind, RunState
from farm.store.samples import Sample

INTERVAL = 10.0
LOAD = """name = "sim-soak"
description = "The simulated hosts' load: the model runs it; nothing is started."
duration = "1h"
script = "true"
quiesce = []
"""


def write_config(root: Path, hosts: int, database_url: str | None) -> Path:
    (root / "loads").mkdir(parents=True)
    (root / "loads" / "sim-soak.toml").write_text(LOAD)
    lines = [
        f'data_dir = "{root / "data"}"',
        f'loads_dir = "{root / "loads"}"',
        f'database_url = "{database_url}"' if database_url else "",
        "[scheduler]",
        f"sample_interval = {INTERVAL}",
        f'remote_dir = "{root / "remote"}"',
    ]
    for i in range(hosts):
        lines += ["[[hosts]]", f'name = "sim{i:04d}"', 'kind = "sim"']
    (root / "farm.toml").write_text("\n".join(lines) + "\n")
    return root / "farm.toml"


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes and their waited-for children."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / tick


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    with LocalPostgres() as cluster:
        cluster.execute("CREATE DATABASE farm")
        yield cluster.url("farm")


def start_edges(local: LocalServices, root: Path, exporter_port: int) -> list[int]:
    """`farm api` and `farm exporter`, as LocalServices starts its processes."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    env = {**local.env(), "FARM_API_TOKEN": "bench-token-0123456789abcdef"}
    pids = []
    for name, argv in (
        ("api", ["api", "--port", str(free_port())]),
        ("exporter", ["exporter", "--port", str(exporter_port)]),
    ):
        with (local.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "farm", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        local.procs[name] = proc
        pids.append(proc.pid)
    return pids


def scrape(port: int) -> None:
    with contextlib.suppress(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()


def sample_gaps(store: Store, since: float) -> tuple[int, list[float]]:
    """How many samples were stored since ``since``, and by how much more than the
    interval each run's consecutive samples there lie apart (sorted): the lateness
    plus the step's own time from its sample to its commit."""
    with store.session() as session:
        rows = session.execute(
            select(Sample.run_id, Sample.ts).where(Sample.ts >= since).order_by(Sample.id)
        ).all()
    last: dict[int | None, float] = {}
    gaps = []
    for run_id, ts in rows:
        if run_id in last:
            gaps.append(max(0.0, ts - last[run_id] - INTERVAL))
        last[run_id] = ts
    return len(rows), sorted(gaps)


LATE = re.compile(rb"step \d+ started (-?\d+\.\d+) s after due")


def lateness(local: LocalServices, workers: list[str], offsets: dict[str, int]) -> list[float]:
    """How late each step started since ``offsets`` in the workers' logs (sorted)."""
    late = []
    for name in workers:
        with (local.log_dir / f"{name}.log").open("rb") as log:
            log.seek(offsets[name])
            late += [max(0.0, float(m[1])) for m in LATE.finditer(log.read())]
    return sorted(late)


def log_sizes(local: LocalServices, names: list[str]) -> dict[str, int]:
    return {name: (local.log_dir / f"{name}.log").stat().st_size for name in names}


def ended(store: Store) -> int:
    """Runs that ended: every run of the benchmark soaks past its end."""
    with store.session() as session:
        count = session.scalar(select(func.count()).select_from(Run).where(Run.state.in_(TERMINAL)))
    return int(count or 0)


def percentile(values: list[float], q: float) -> float | None:
    return round(values[int(q * (len(values) - 1))], 2) if values else None


def stalled(store: Store, end: float, grace: float) -> int:
    """Soaking runs whose newest sample is older than ``grace`` at ``end``."""
    with store.session() as session:
        newest = (
            select(Sample.run_id, func.max(Sample.ts).label("ts"))
            .group_by(Sample.run_id)
            .subquery()
        )
        count = session.scalar(
            select(func.count())
            .select_from(Run)
            .outerjoin(newest, newest.c.run_id == Run.id)
            .where(Run.state == RunState.SOAKING)
            .where((newest.c.ts.is_(None)) | (newest.c.ts < end - grace))
        )
    return int(count or 0)


def soaking(store: Store) -> int:
    with store.session() as session:
        count = session.scalar(
            select(func.count()).select_from(Run).where(Run.state == RunState.SOAKING)
        )
    return int(count or 0)


def run(args: argparse.Namespace, root: Path, url: str | None) -> dict[str, object]:
    path = write_config(root, args.hosts, url)
    config: FarmConfig = load_config(path)
    store = Store(config.db_url)
    names = [h.name for h in config.hosts]
    with LocalServices(path, root / "logs") as local:
        config = config.model_copy(update={"broker_url": local.broker_url})
        get_app(config)
        workers = [f"worker-{w}" for w in range(args.workers)]
        for w, worker in enumerate(workers):
            mine = names[w :: args.workers]
            local.start_worker(worker, hosts=mine, concurrency=args.concurrency)
        local.start_beat()
        exporter_port = free_port()
        controller = [local.procs["beat"].pid, *start_edges(local, root, exporter_port)]
        for name in names:
            queue_run(
                config,
                store,
                kind=RunKind.PATCHED,
                host=name,
                commit="0" * 40,
                load="sim-soak",
                soak_seconds=args.warmup + args.seconds + 600,
                details={"kernel": "running"},
            )
        deadline = time.monotonic() + args.warmup
        while soaking(store) < args.hosts and time.monotonic() < deadline:
            time.sleep(2)
        progress(f"{soaking(store)} of {args.hosts} runs soaking; measuring {args.seconds:.0f} s")
        worker_pids = [local.procs[w].pid for w in workers]
        offsets, load0 = log_sizes(local, workers), os.getloadavg()[0]
        start, cpu0 = time.time(), cpu_seconds(controller)
        wcpu0 = cpu_seconds(worker_pids)
        while time.time() < start + args.seconds:
            scrape(exporter_port)
            time.sleep(15)
        wall, cpu = time.time() - start, cpu_seconds(controller) - cpu0
        wcpu = cpu_seconds(worker_pids) - wcpu0
        (steps, gaps), late = sample_gaps(store, start), lateness(local, workers, offsets)
        grace = config.scheduler.overdue_seconds + 2 * INTERVAL
        lost = stalled(store, time.time(), grace) + ended(store)
        redriven = sum(local.log(n).count("reconciler: re-driving") for n in local.procs)
    store.dispose()
    return {
        "hosts": args.hosts,
        "database": args.database,
        "seconds": round(wall),
        "controller_cpu_fraction": round(cpu / wall, 3),
        "steps_per_second": round(steps / wall, 1),
        "step_latency_p99_seconds": percentile(late, 0.99),
        "step_latency_p50_seconds": percentile(late, 0.50),
        "step_latency_max_seconds": percentile(late, 1.0),
        "sample_gap_over_interval_p99_seconds": percentile(gaps, 0.99),
        "lost_steps": lost,
        "redriven_steps": redriven,
        "worker_cpu_fraction": round(wcpu / wall, 3),
        "worker_cpu_ms_per_step": round(1000 * wcpu / steps, 2) if steps else None,
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "concurrency": args.concurrency or "farm's default",
    }


def progress(message: str) -> None:
    print(f"scheduler_scale: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=120, help="measurement window")
    parser.add_argument("--warmup", type=float, default=300, help="at most, to start the runs")
    parser.add_argument("--workers", type=int, default=2, help="`farm worker` processes")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="threads per worker (default: farm's)"
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="farm-scale-") as tmp, database(args.database) as url:
        result = run(args, Path(tmp), url)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
