# SPDX-License-Identifier: Apache-2.0
"""Workers register the hosts they serve and beat while they run.

``serving(...)`` wraps a `farm worker`'s life: it records the worker and its hosts,
then refreshes ``heartbeat_at`` from a thread every ``heartbeat_seconds``. A worker
whose heartbeat is older than three periods is shown as silent by ``farm status``
(killed, its machine down, or cut off from the database). A host that workers
registered but none of them beats any more is out of contact: its runs wait (the
reconciler keeps their steps queued) until a worker serving it is back.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from farm.store import Store
from farm.store.base import as_utc, utcnow
from farm.store.workers import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    hosts: list[str]
    heartbeat_seconds_ago: float
    alive: bool


@dataclass(frozen=True)
class Building:
    """Whether a worker serves the build queue, and where its artefacts are fetched."""

    builds: bool = False
    artefact_address: str | None = None


def register(
    store: Store, name: str, hosts: Sequence[str], building: Building = Building()
) -> None:
    """Record (or re-record, after a restart) the worker and the hosts it serves."""
    with store.session() as session:
        worker = session.get(Worker, name) or Worker(name=name)
        worker.hosts, worker.started_at, worker.heartbeat_at = list(hosts), utcnow(), utcnow()
        worker.builds, worker.artefact_address = building.builds, building.artefact_address
        session.add(worker)


def heartbeat(store: Store, name: str) -> None:
    with store.session() as session:
        session.execute(update(Worker).where(Worker.name == name).values(heartbeat_at=utcnow()))


@contextmanager
def serving(
    store: Store, name: str, hosts: Sequence[str], every: float, building: Building = Building()
) -> Iterator[None]:
    """Registered and beating while the body (the worker) runs."""
    register(store, name, hosts, building)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                heartbeat(store, name)
            except SQLAlchemyError as exc:  # the database is away: beat again later
                log.warning("worker %s: heartbeat not recorded: %s", name, exc)

    thread = threading.Thread(target=loop, name="farm-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def beating(heartbeat_at: dt.datetime, every: float, now: dt.datetime) -> bool:
    """A worker counts as alive until it misses three beats of ``every`` seconds."""
    return (now - as_utc(heartbeat_at)).total_seconds() <= 3 * every


def statuses(store: Store, every: float) -> list[WorkerStatus]:
    """Every registered worker, its hosts and how long ago it last beat."""
    now = utcnow()
    with store.session() as session:
        workers = session.scalars(select(Worker).order_by(Worker.name)).all()
    out = []
    for w in workers:
        ago = (now - as_utc(w.heartbeat_at)).total_seconds()
        alive = beating(w.heartbeat_at, every, now)
        out.append(WorkerStatus(w.name, list(w.hosts), round(ago, 1), alive))
    return out


def live_workers_by_host(workers: Sequence[WorkerStatus]) -> dict[str, list[str]]:
    """Every host a worker registered: the workers serving it that still beat (an empty
    list when all of them are silent: the farm lost contact with that host)."""
    serving: dict[str, list[str]] = {}
    for w in workers:
        for host in w.hosts:
            serving.setdefault(host, [])
            if w.alive:
                serving[host].append(w.name)
    return serving
