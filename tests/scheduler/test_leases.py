# SPDX-License-Identifier: Apache-2.0
"""Host leases on a real redis-server: exclusive, expiring, renewed, fenced."""

from __future__ import annotations

import time

from farm.config import FarmConfig
from farm.scheduler.leases import HostLease, redis_client
from farm.services import LocalServices
from farm.store import Store
from farm.store.samples import HostState


def lease(stack: LocalServices, store: Store, ttl: float = 1.0) -> HostLease:
    return HostLease(redis_client(stack.broker_url), store, "laptop", ttl)


def test_only_one_holder_at_a_time_and_each_gets_a_higher_fence(
    stack: LocalServices, soak_store: Store
) -> None:
    first, second = lease(stack, soak_store, ttl=30), lease(stack, soak_store, ttl=30)

    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()

    assert second.fence == first.fence + 1
    with soak_store.session() as session:
        assert session.get(HostState, "laptop").fence == second.fence
    second.release()


def test_a_dead_holders_lease_expires_and_cannot_be_released_by_others(
    stack: LocalServices, soak_store: Store
) -> None:
    dead, other = lease(stack, soak_store, ttl=1.0), lease(stack, soak_store, ttl=1.0)
    assert dead.acquire()
    other.release()  # not its lease: nothing happens
    assert dead.holder() == dead.token

    time.sleep(1.5)  # the holder was killed: nobody renews

    assert other.acquire()
    assert not dead.renew()  # it cannot take the lease back
    assert dead.lost.is_set()


def test_a_holder_keeps_its_lease_while_renewing(stack: LocalServices, soak_store: Store) -> None:
    holder, other = lease(stack, soak_store, ttl=1.0), lease(stack, soak_store, ttl=1.0)
    assert holder.acquire()
    with holder.renewing():
        time.sleep(2.5)  # more than two TTLs
        assert not other.acquire()
    holder.release()
    assert other.acquire()


def test_the_fence_survives_a_redis_restart(
    stack: LocalServices, soak_store: Store, soak_config: FarmConfig
) -> None:
    before = lease(stack, soak_store, ttl=30)
    assert before.acquire()

    stack.restart_redis()  # comes back empty: the lease key is gone

    after = lease(stack, soak_store, ttl=30)
    assert after.acquire()
    assert after.fence > before.fence  # the database, not Redis, orders the holders
