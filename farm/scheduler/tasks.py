# SPDX-License-Identifier: Apache-2.0
"""The only module that defines Celery tasks.

``farm.advance(run_id, tick, host=...)`` takes one step of a run under the host's lease
and schedules the next one (the sender names the host, so a step reads nothing before
its lease; each logs how late it started); ``farm.build(build_id)`` builds a kernel on a
build worker, under no host's lease (farm.scheduler.builds); ``farm.reconcile()`` (beat)
re-drives runs whose step was lost and advances open bisections (farm.scheduler.bisecting).
Tasks stay short but a build (minutes, on the build queue only); a 12 h soak is
thousands of steps.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import current_app, shared_task

from farm.config import FarmConfig
from farm.errors import InfraError
from farm.hosts.base import Host
from farm.scheduler import lifecycle
from farm.scheduler.app import schedule
from farm.scheduler.leases import HostLease, redis_client
from farm.store import Store
from farm.store.runs import Run

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Per-process resources shared by the tasks of a worker."""

    config: FarmConfig
    store: Store
    client: redis.Redis[bytes]
    hosts: dict[str, Host] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            from farm.hosts import get_host
            from farm.scheduler.health import wire_alerts

            self.hosts[name] = wire_alerts(get_host(self.config, name), self.store)
        return self.hosts[name]


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The worker's resources, built on first use from the app's configuration."""
    global _runtime
    config: FarmConfig = current_app.conf.farm_config
    if _runtime is None or _runtime.config is not config:
        from farm.soak import sim

        sim.register()  # simulated hosts, should the inventory have any (benchmarks)
        _runtime = Runtime(config, Store(config.db_url), redis_client(config.broker_url))
    return _runtime


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="farm.advance",
    autoretry_for=(InfraError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=10,
    acks_late=True,
    reject_on_worker_lost=True,
)
def advance(self: Any, run_id: int, tick: int, host: str | None = None) -> None:
    started = time.time()
    rt = runtime()
    host_name = host or _host_of(rt.store, run_id)  # the sender names it: no read
    if host_name is None:
        return
    _log_start(run_id, tick, self.request.eta, started)
    lease = HostLease(rt.client, rt.store, host_name, rt.config.scheduler.lease_seconds)
    if not lease.acquire():
        # Someone else acts on the host now; try again shortly (a duplicate will drop).
        schedule(run_id, host_name, tick, min(rt.config.scheduler.sample_interval, 5.0))
        return
    try:
        with lease.renewing():
            ctx = lifecycle.Ctx(rt.config, rt.store, rt.host(host_name), lease.fence)
            result = lifecycle.advance(ctx, run_id, tick)
    except lifecycle.LeaseLost as exc:
        log.warning("run %s: %s; dropping this step", run_id, exc)
        return
    finally:
        lease.release()
    if result is not None:
        schedule(run_id, host_name, *result)
    for followup, host in ctx.followups:  # a health check the step queued
        schedule(followup, host, 0, 0.0)


def _host_of(store: Store, run_id: int) -> str | None:
    with store.session() as session:
        run = session.get(Run, run_id)
        return run.host if run else None


def _log_start(run_id: int, tick: int, eta: str | dt.datetime | None, started: float) -> None:
    """A step sent with a delay says how late it started: its due time (the message's
    ETA, set when the previous step committed) to the moment a worker began it."""
    if eta is None:
        log.info("run %s: step %s started", run_id, tick)
        return
    due = eta if isinstance(eta, dt.datetime) else dt.datetime.fromisoformat(eta)
    late = started - due.timestamp()
    log.info("run %s: step %s started %.3f s after due", run_id, tick, late)


@shared_task(  # type: ignore[untyped-decorator]
    bind=True, name="farm.build", acks_late=True, reject_on_worker_lost=True
)
def build(self: Any, build_id: int) -> None:
    from farm.scheduler import builds

    rt = runtime()
    builds.run(rt.config, rt.store, build_id, self.request.hostname or "farm")


@shared_task(name="farm.reconcile", acks_late=True)  # type: ignore[untyped-decorator]
def reconcile() -> int:
    from farm.scheduler.api import advance_bisections
    from farm.scheduler.reconciler import redrive

    rt = runtime()
    try:
        queued = redrive(rt.store, rt.config, rt.client, schedule)
    except InfraError as exc:  # the broker's Redis is away: the next beat tries again
        log.warning("%s", exc)
        queued = 0
    advance_bisections(rt.config, rt.store)  # start, feed and plan open bisections
    return queued
