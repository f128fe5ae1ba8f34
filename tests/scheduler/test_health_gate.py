# SPDX-License-Identifier: Apache-2.0
"""Host health through real Celery workers, a real redis-server and a real sshd host.

A run whose load breaks ends INFRA; the farm then checks the host (its running
kernel, a short load) before the next queued run may start. A check that fails takes
the host out; the queued run waits until a human puts the host back and a new check
passes. The host is a laptop: each run notes that sleep could not be inhibited here.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from soakstack import SshHost, write_farm_toml
from sqlalchemy import select

from farm.config import FarmConfig, load_config
from farm.ending import Verdict
from farm.metrics.exporter import Exposition
from farm.scheduler import health
from farm.scheduler.api import queue_run, wait_for_runs
from farm.services import LocalServices
from farm.store import Store
from farm.store.hosts import Health
from farm.store.runs import Run, RunKind, RunState

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url() -> None:
    """The gate's decisions are single-process: the store behaves alike on both engines,
    and the concurrency is tested on PostgreSQL in test_reliability and
    test_concurrency. SQLite only, for CI time."""
    return None


FARM = [sys.executable, "-m", "farm"]


def laptop_extra(check_load: str) -> str:
    return f'[hosts.health]\nload = "{check_load}"\nseconds = 3\n[hosts.laptop]\n'


@pytest.fixture
def soak_config(tmp_path: Path, ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch) -> FarmConfig:
    """The shared sshd farm, its laptop checked with a load that breaks."""
    path = write_farm_toml(tmp_path / "farm.toml", ssh_host, host_extra=laptop_extra("exits-early"))
    monkeypatch.setenv("FARM_CONFIG", str(path))
    for name in ("FARM_DATABASE_URL", "FARM_BROKER_URL", "FARM_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return load_config(path)


@pytest.fixture
def config(soak_config: FarmConfig, stack: LocalServices) -> FarmConfig:
    return soak_config.model_copy(update={"broker_url": stack.broker_url})


def submit(config: FarmConfig, store: Store, load: str) -> int:
    return queue_run(
        config, store, kind=RunKind.PATCHED, host="laptop", commit="running", load=load,
        soak_seconds=3, details={"kernel": "running"},
    )  # fmt: skip


def runs(store: Store, kind: RunKind) -> list[Run]:
    with store.session() as session:
        return list(session.scalars(select(Run).where(Run.kind == kind).order_by(Run.id)))


def wait_until(
    what: str, check: Callable[[], bool], stack: LocalServices, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{stack.log('worker-1')[-3000:]}")
        time.sleep(0.5)


def host_state(store: Store) -> Health:
    with store.session() as session:
        return health.state_of(session, "laptop")


def test_an_infra_run_is_followed_by_a_health_check_before_other_work(
    config: FarmConfig, soak_store: Store, stack: LocalServices, tmp_path: Path, ssh_host: SshHost
) -> None:
    write_farm_toml(tmp_path / "farm.toml", ssh_host, host_extra=laptop_extra("idle-loop"))
    stack.start_worker("worker-1")
    stack.start_beat()
    broken = submit(config, soak_store, "exits-early")
    waiting = submit(config, soak_store, "idle-loop")

    wait_until("a health check", lambda: bool(runs(soak_store, RunKind.HEALTH)), stack)
    [check] = runs(soak_store, RunKind.HEALTH)
    final = wait_for_runs(soak_store, [broken, waiting, check.id], timeout=120, poll=1)

    assert [(s.kind, s.verdict) for s in final] == [
        ("patched", "INFRA"), ("patched", "PASS"), ("health", "PASS"),
    ]  # fmt: skip
    ran = {
        run.id: run for run in runs(soak_store, RunKind.PATCHED) + runs(soak_store, RunKind.HEALTH)
    }
    started = {run_id: run.started_at for run_id, run in ran.items()}
    assert started[broken] < started[check.id] < started[waiting]  # type: ignore[operator]
    with soak_store.session() as session:
        changes = [(c.state, c.run_id) for c in health.history(session, "laptop")]
    assert changes == [(Health.GOOD, check.id), (Health.UNKNOWN, broken)]
    [note] = ran[waiting].details["notes"]
    assert note.startswith("systemd-inhibit failed on laptop") and "not inhibited" in note


def test_a_failed_check_takes_the_host_out_until_a_human_puts_it_back(
    config: FarmConfig, soak_store: Store, stack: LocalServices, tmp_path: Path, ssh_host: SshHost
) -> None:
    stack.start_worker("worker-1")
    stack.start_beat()
    submit(config, soak_store, "exits-early")
    waiting = submit(config, soak_store, "idle-loop")

    wait_until("the host to be BAD", lambda: host_state(soak_store) == Health.BAD, stack)
    with soak_store.session() as session:
        [alert] = health.open_alerts(session)
    [check] = runs(soak_store, RunKind.HEALTH)
    assert (
        alert.message
        == f"health check run {check.id} failed: load exits-early exited with status 7"
    )
    time.sleep(4 * config.scheduler.sample_interval)  # the waiting run is stepped, and refused
    with soak_store.session() as session:
        assert session.get(Run, waiting).state == RunState.QUEUED  # type: ignore[union-attr]
    body = Exposition(config, soak_store).render().decode()
    assert 'farm_host_health{host="laptop",state="BAD"} 1.0' in body

    # The human fixes the host (here: the check's load) and puts it back.
    write_farm_toml(tmp_path / "farm.toml", ssh_host, host_extra=laptop_extra("idle-loop"))
    back = subprocess.run(
        [*FARM, "hosts", "maintenance", "laptop", "off", "--reason", "fixed"],
        env=stack.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert back.stdout.startswith("laptop: BAD -> UNKNOWN (fixed; health check run ")

    [final] = wait_for_runs(soak_store, [waiting], timeout=120, poll=1)
    assert final.verdict == Verdict.PASS
    assert host_state(soak_store) == Health.GOOD
    with soak_store.session() as session:
        assert health.open_alerts(session) == []  # putting it back acknowledged the alert
        assert [c.state for c in health.history(session, "laptop")] == [
            Health.GOOD, Health.UNKNOWN, Health.BAD, Health.UNKNOWN,
        ]  # fmt: skip
