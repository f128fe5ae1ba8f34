# SPDX-License-Identifier: Apache-2.0
"""One job per host at a time: a Redis lease, fenced in the database.

The lease is ``SET farm:lease:<host> <token> NX PX ttl``: whoever sets it may act on
the host; it is renewed (compare-and-expire) every ttl/3 while a step runs and
deleted (compare-and-delete) when the step ends, so a killed worker's lease simply
expires. A lease alone cannot stop a holder that was paused past its TTL and wakes up
believing it still holds it, so every acquisition also bumps the host's ``fence`` in
the database, and a step commits only while the fence is still its own (see
farm.scheduler.lifecycle.commit). The fence lives in the database, not in Redis, so it
survives a broker that restarts empty.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from farm.errors import FarmBug, InfraError
from farm.store import Store
from farm.store.samples import HostState

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def redis_client(broker_url: str) -> redis.Redis[bytes]:
    """A client for the broker's Redis (kombu's ``redis+socket://`` is redis-py's ``unix://``)."""
    url = broker_url.replace("redis+socket://", "unix://", 1)
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)


def ensure_host_row(store: Store, host: str) -> None:
    with store.session() as session:
        if session.get(HostState, host) is not None:
            return
    try:
        with store.session() as session:
            session.add(HostState(host=host, fence=0))
    except IntegrityError:
        pass  # another worker created it first


def bump_fence(store: Store, host: str) -> int:
    """The host's next fence: one UPDATE (a step's every lease takes one); the host's
    row is created the first time only."""
    for _ in range(2):
        with store.session() as session:
            fence = session.execute(
                update(HostState)
                .where(HostState.host == host)
                .values(fence=HostState.fence + 1)
                .returning(HostState.fence)
            ).scalar_one_or_none()
        if fence is not None:
            return int(fence)
        ensure_host_row(store, host)
    raise FarmBug(f"host {host}: no fence row after creating it")


class HostLease:
    """A lease on one host; ``fence`` is valid after a successful :meth:`acquire`."""

    def __init__(self, client: redis.Redis[bytes], store: Store, host: str, ttl: float) -> None:
        self.client, self.store, self.host = client, store, host
        self.key = f"farm:lease:{host}"
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.token = uuid.uuid4().hex
        self.fence = 0
        self.lost = threading.Event()

    def acquire(self) -> bool:
        if not self._call(self.client.set, self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self.fence = bump_fence(self.store, self.host)
        return True

    def renew(self) -> bool:
        ok = bool(self._call(self.client.eval, _RENEW, 1, self.key, self.token, self.ttl_ms))
        if not ok:
            self.lost.set()
        return ok

    def release(self) -> None:
        try:
            self._call(self.client.eval, _RELEASE, 1, self.key, self.token)
        except InfraError as exc:  # it expires by itself
            log.info("lease %s not released: %s", self.key, exc)

    def holder(self) -> str | None:
        value = self._call(self.client.get, self.key)
        return value.decode() if isinstance(value, bytes) else None

    @contextmanager
    def renewing(self) -> Iterator[HostLease]:
        """Keep the lease alive while the body runs (a build takes minutes)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.ttl_ms / 3000):
                try:
                    if not self.renew():
                        log.warning("lease %s lost to another holder", self.key)
                        return
                except InfraError as exc:
                    log.warning("lease %s not renewed: %s", self.key, exc)

        thread = threading.Thread(target=loop, name=f"lease-{self.host}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise InfraError(f"redis unreachable for lease {self.key}: {exc}") from exc
