# SPDX-License-Identifier: Apache-2.0
"""What ``farm status`` shows: hosts, workers, active runs and their progress."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from farm.config import FarmConfig
from farm.scheduler.api import status_of
from farm.scheduler.workers import live_workers_by_host
from farm.scheduler.workers import statuses as worker_statuses
from farm.store import Store
from farm.store.base import utcnow
from farm.store.hosts import Health
from farm.store.hosts import states as host_healths
from farm.store.runs import TERMINAL, Run
from farm.store.samples import HostState


def farm_status(config: FarmConfig, store: Store, *, include_recent: bool) -> dict[str, Any]:
    now = time.time()
    stale = 3 * config.scheduler.sample_interval
    with store.session() as session:
        states = {h.host: h for h in session.scalars(select(HostState))}
        healths = host_healths(session)
        condition: ColumnElement[bool] = Run.state.not_in(TERMINAL)
        if include_recent:
            condition = or_(condition, Run.ended_at >= utcnow() - dt.timedelta(days=1))
        runs = [
            status_of(r).to_json()
            for r in session.scalars(select(Run).where(condition).order_by(Run.id))
        ]
    workers = worker_statuses(store, config.scheduler.heartbeat_seconds)
    served = live_workers_by_host(workers)
    for run in runs:  # waits for a worker that is gone: killed, or its machine cut off
        run["lost_contact"] = run["state"] not in TERMINAL and served.get(run["host"]) == []
    hosts = []
    for host in config.hosts:
        state = states.get(host.name)
        last_ok = state.last_ok if state else None
        hosts.append(
            {
                "name": host.name,
                "kind": host.kind,
                "up": bool(state and state.up and last_ok and now - last_ok <= stale),
                "last_contact_seconds_ago": round(now - last_ok, 1) if last_ok else None,
                "run": state.run_id if state else None,
                "health": str(healths.get(host.name, Health.UNKNOWN)),
                "workers": served.get(host.name, []),
            }
        )
    return {"hosts": hosts, "workers": [asdict(w) for w in workers], "runs": runs}


def render(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped into a file or grep: no 80-column squeeze
        console = Console(width=200)
    hosts = Table("host", "kind", "health", "up", "last contact", "run", "workers", title="hosts")
    for h in data["hosts"]:
        ago = h["last_contact_seconds_ago"]
        hosts.add_row(
            h["name"],
            h["kind"],
            h["health"],
            "yes" if h["up"] else "no",
            f"{ago:.0f}s ago" if ago is not None else "never",
            str(h["run"] or "-"),
            ", ".join(h["workers"]) or "-",
        )
    console.print(hosts)
    if data["workers"]:
        workers = Table("worker", "hosts", "heartbeat", title="workers")
        for w in data["workers"]:
            beat = f"{w['heartbeat_seconds_ago']:.0f}s ago" + ("" if w["alive"] else " (silent)")
            workers.add_row(w["name"], ", ".join(w["hosts"]), beat)
        console.print(workers)
    runs = Table(
        "run", "kind", "host", "load", "commit", "state", "progress", "verdict", title="runs"
    )
    for r in data["runs"]:
        pct = 100 * r["soaked_seconds"] / r["soak_seconds"] if r["soak_seconds"] else 0
        verdict = r["verdict"] or ""
        if r["reasons"]:
            verdict += f": {r['reasons'][0]}"
        runs.add_row(
            str(r["id"]),
            r["kind"],
            r["host"],
            r["load"],
            r["commit"][:12],
            r["state"] + (" (lost contact)" if r["lost_contact"] else ""),
            f"{pct:.0f}%",
            verdict,
        )
    console.print(runs if data["runs"] else "no runs")
