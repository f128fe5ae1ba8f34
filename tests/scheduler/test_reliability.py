# SPDX-License-Identifier: Apache-2.0
"""Soaks through real Celery workers and a real redis-server that get killed.

Each test queues a run of the running kernel on the sshd host (1 s sampling, a load
that records its start on the host), breaks something in the middle of the soak, and
checks the run still reaches its verdict with the evidence intact.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence

import pytest
from soakstack import SshHost
from sqlalchemy import select

from farm.config import FarmConfig
from farm.scheduler.api import RunStatus, queue_run, wait_for_runs
from farm.services import LocalServices
from farm.store import Store
from farm.store.runs import Run, RunKind
from farm.store.samples import Sample

pytestmark = pytest.mark.slow


@pytest.fixture
def config(soak_config: FarmConfig, stack: LocalServices) -> FarmConfig:
    return soak_config.model_copy(update={"broker_url": stack.broker_url})


def submit(config: FarmConfig, store: Store, seconds: float, count: int = 1) -> list[int]:
    return [
        queue_run(
            config,
            store,
            kind=RunKind.HEALTH,
            host="laptop",
            commit="running",
            load="idle-loop",
            soak_seconds=seconds,
            details={"kernel": "running"},
        )
        for _ in range(count)
    ]


def sample_times(store: Store, run_id: int) -> list[float]:
    with store.session() as session:
        query = select(Sample.ts).where(Sample.run_id == run_id, Sample.phase == "soak")
        return list(session.scalars(query.order_by(Sample.ts)))


def wait_until(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def finish(store: Store, run_ids: Sequence[int], stack: LocalServices) -> list[RunStatus]:
    final = wait_for_runs(store, run_ids, timeout=180, poll=1)
    assert all(s.done for s in final), f"runs not done: {final}\n{stack.log('worker-1')[-3000:]}"
    return final


def starts_of(ssh: SshHost, run_id: int) -> list[str]:
    lines = (ssh.remote_dir / "starts.log").read_text().splitlines()
    return [line for line in lines if line.startswith(f"run-{run_id} ")]


@pytest.mark.parametrize(
    "database_url", ["sqlite"], indirect=True
)  # CI time: the races below run on both
def test_a_run_goes_through_worker_and_beat_to_a_verdict(
    config: FarmConfig, soak_store: Store, stack: LocalServices, ssh_host: SshHost
) -> None:
    stack.start_worker("worker-1")
    stack.start_beat()
    [run_id] = submit(config, soak_store, seconds=4)

    [status] = finish(soak_store, [run_id], stack)

    assert (status.state, status.verdict) == ("done", "PASS")
    assert len(sample_times(soak_store, run_id)) >= 3
    assert len(starts_of(ssh_host, run_id)) == 1


def test_kill_9_of_the_worker_mid_soak_leaves_a_gap_and_one_load_start(
    config: FarmConfig, soak_store: Store, stack: LocalServices, ssh_host: SshHost
) -> None:
    stack.start_worker("worker-1")
    stack.start_beat()
    [run_id] = submit(config, soak_store, seconds=20)
    wait_until("3 samples", lambda: len(sample_times(soak_store, run_id)) >= 3)

    stack.kill("worker-1")
    time.sleep(4)  # nobody samples now
    stack.start_worker("worker-2")

    [status] = finish(soak_store, [run_id], stack)
    assert (status.state, status.verdict) == ("done", "PASS")
    times = sample_times(soak_store, run_id)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 4  # the gap where no worker lived
    assert len(times) >= 6  # sampling resumed after it
    assert len(starts_of(ssh_host, run_id)) == 1  # the load was started once


@pytest.mark.parametrize(
    "database_url", ["sqlite"], indirect=True
)  # CI time: the races below run on both
def test_a_redis_restart_mid_soak_does_not_lose_the_run(
    config: FarmConfig, soak_store: Store, stack: LocalServices, ssh_host: SshHost
) -> None:
    stack.start_worker("worker-1")
    stack.start_beat()
    [run_id] = submit(config, soak_store, seconds=15)
    wait_until("3 samples", lambda: len(sample_times(soak_store, run_id)) >= 3)
    before = len(sample_times(soak_store, run_id))

    stack.restart_redis(downtime=2)  # comes back empty: every queued message is gone

    [status] = finish(soak_store, [run_id], stack)
    assert (status.state, status.verdict) == ("done", "PASS")
    assert len(sample_times(soak_store, run_id)) > before + 2  # sampling went on after it
    assert len(starts_of(ssh_host, run_id)) == 1


def test_two_workers_on_one_host_queue_never_run_two_jobs_on_the_host_at_once(
    config: FarmConfig, soak_store: Store, stack: LocalServices, ssh_host: SshHost
) -> None:
    stack.start_worker("worker-1", hosts=["laptop"], concurrency=3)
    stack.start_worker("worker-2", hosts=["laptop"], concurrency=3)
    stack.start_beat()
    run_ids = submit(config, soak_store, seconds=3, count=3)

    final = finish(soak_store, run_ids, stack)

    assert [s.verdict for s in final] == ["PASS", "PASS", "PASS"]
    with soak_store.session() as session:
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids)).order_by(Run.id)).all()
        windows = [(r.started_at, r.ended_at) for r in runs]
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start is not None and end is not None and start >= end  # one after the other
    # The host's own record: each load started once, in queue order.
    lines = (ssh_host.remote_dir / "activity.log").read_text().splitlines()
    assert [line.split()[2] for line in lines] == [f"run-{i}" for i in run_ids]
