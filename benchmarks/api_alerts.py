# SPDX-License-Identifier: Apache-2.0
"""farm api's webhook under load: how fast it answers, new alerts and repeats.

Starts `farm api` (uvicorn) on a free loopback port over a fresh SQLite store with
--runs runs, then posts --alerts Alertmanager notifications naming them (each one new,
so each queues a bisection) and the same number again (repeats, deduplicated), from
--clients concurrent clients.

    .venv/bin/python benchmarks/api_alerts.py --alerts 300 --clients 4 --json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from farm.store import Store
from farm.store.runs import Run, RunKind, RunState

TOKEN = "benchmark-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def notification(i: int, runs: int) -> dict[str, Any]:
    labels = {"alertname": "FarmBench", "run": str(1 + i % runs), "counter": f"counter_{i}"}
    alert = {"status": "firing", "labels": labels, "startsAt": "2026-11-26T04:00:00Z"}
    return {"version": "4", "status": "firing", "alerts": [{**alert, "fingerprint": f"{i:016x}"}]}


def post_all(url: str, bodies: list[dict[str, Any]], clients: int) -> list[float]:
    """Each client keeps its connection open, as Alertmanager and Grafana do."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    local = threading.local()

    def post(body: dict[str, Any]) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, headers=headers, timeout=60)
        start = time.perf_counter()
        local.client.post("/api/alerts", json=body).raise_for_status()
        return time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(post, bodies))


def figures(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "farm.toml").write_text(f'data_dir = "{home}"\n')
        store = Store(f"sqlite:///{home / 'farm.db'}")
        with store.session() as db:
            db.add_all(
                Run(
                    kind=RunKind.PATCHED,
                    commit="c",
                    host="h",
                    load="l",
                    soak_seconds=1.0,
                    state=RunState.SOAKING,
                )
                for _ in range(args.runs)
            )
        port = free_port()
        env = {**os.environ, "FARM_CONFIG": str(home / "farm.toml"), "FARM_API_TOKEN": TOKEN}
        farm = Path(sys.executable).parent / "farm"
        server = subprocess.Popen(
            [str(farm), "api", "--port", str(port), "--log-level", "warning"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit("farm api did not start within 60 s")
                time.sleep(0.2)
            bodies = [notification(i, args.runs) for i in range(args.alerts)]
            results: dict[str, Any] = {"alerts": args.alerts, "clients": args.clients}
            for phase in ("new", "repeat"):
                start = time.perf_counter()
                latencies = post_all(url, bodies, args.clients)
                results[phase] = figures(latencies, time.perf_counter() - start)
        finally:
            server.terminate()
            server.wait(timeout=10)
            store.dispose()
    if args.json:
        print(json.dumps(results))
        return
    for phase in ("new", "repeat"):
        f = results[phase]
        print(
            f"{phase:>6} alerts: {f['per_second']:7.1f}/s  "
            f"p50 {f['p50_ms']:6.2f} ms  p99 {f['p99_ms']:6.2f} ms"
        )


if __name__ == "__main__":
    main()
