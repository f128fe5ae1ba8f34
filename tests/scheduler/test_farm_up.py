# SPDX-License-Identifier: Apache-2.0
"""`farm up` brings up a whole farm for a farm.toml with one command, keeps it up when a
process dies, and `farm down` leaves nothing running: real redis-server, Celery worker
and beat, exporter, and a QEMU host soaking the session's kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.config import FarmConfig, load_config
from farm.hosts.qemu import QemuVm
from farm.scheduler.api import queue_run, statuses, wait_for_runs
from farm.store import Store
from farm.store.runs import Run, RunKind, RunState
from farm.store.samples import Sample
from farm.supervisor import UpState, read_state

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel]
HOST = "upvm"  # not the other QEMU tests' names: they share the session's data dir


def farm(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    return subprocess.run(
        [sys.executable, "-m", "farm", "--config", str(config), *args],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture
def up_config(kernel_build_env: KernelBuildEnv, tmp_path: Path) -> Iterator[FarmConfig]:
    """One QEMU host, second-scale timings, the session's build artefacts; whatever
    the test leaves up is brought down."""
    path = tmp_path / "farm.toml"
    path.write_text(
        f'data_dir = "{kernel_build_env.data_dir}"\n'
        f'database_url = "sqlite:///{tmp_path / "farm.db"}"\n'
        "[scheduler]\nsample_interval = 2.0\nhang_grace = 10.0\nlease_seconds = 10.0\n"
        "reconcile_seconds = 2.0\noverdue_seconds = 15.0\n\n"
        f'[[trees]]\nname = "linux"\npath = "{kernel_build_env.tree}"\n\n'
        f'[[hosts]]\nname = "{HOST}"\nkind = "qemu"\nboot_timeout = 240\n'
        "[hosts.qemu]\nmemory_mb = 384\n"
    )
    config = load_config(path)
    try:
        yield config
    finally:
        farm(path, "down")
        QemuVm(config.host(HOST), config.data_dir).stop()


def sessions_alive(sids: set[int]) -> list[str]:
    """Every process on the machine in one of these sessions, as "pid cmdline"."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it ended while we looked
        if int(fields[3]) in sids:  # field 6: the session id
            found.append(f"{stat.parent.name} {cmdline}")
    return found


def wait_for(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def worker_pid(state: UpState | None) -> int | None:
    assert state is not None
    return next(s.pid for s in state.services if s.name == "worker")


def test_farm_up_runs_a_soak_through_a_worker_killed_mid_soak_and_farm_down_stops_all(
    up_config: FarmConfig, soak_kernel: KernelArtifacts
) -> None:
    assert up_config.source is not None
    started = farm(up_config.source, "up")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("farm started: supervisor pid ")
    state = read_state(up_config.data_dir)
    assert state is not None and state.private_broker
    assert [s.name for s in state.services] == ["redis", "worker", "beat", "exporter"]
    status = json.loads(farm(up_config.source, "up", "--status", "--json").stdout)
    assert status["up"] and ":***@127.0.0.1:" in status["broker_url"]  # no password shown

    config = up_config.model_copy(update={"broker_url": state.broker_url})
    store = Store(config.db_url)
    run_id = queue_run(
        config, store, kind=RunKind.BASELINE, host=HOST, commit=soak_kernel.commit,
        load="thp-split", soak_seconds=40,
    )  # fmt: skip

    def soaking() -> bool:
        with store.session() as session:
            run = session.get(Run, run_id)
            samples = session.scalars(select(Sample.id).where(Sample.run_id == run_id)).all()
        return run is not None and run.state == RunState.SOAKING and len(samples) >= 2

    wait_for(f"run {run_id} soaking: {statuses(store, [run_id])}", soaking, 900)
    killed = worker_pid(state)
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    wait_for(
        "a new worker",
        lambda: worker_pid(read_state(up_config.data_dir)) not in (None, killed),
        60,
    )

    [final] = wait_for_runs(store, [run_id], timeout=600, poll=2)
    store.dispose()
    assert (final.state, final.verdict) == ("done", "PASS"), final.reasons
    after = read_state(up_config.data_dir)
    assert after is not None
    assert next(s for s in after.services if s.name == "worker").restarts == 1
    assert (
        "worker was killed by signal 9" in (up_config.data_dir / "logs/supervisor.log").read_text()
    )

    stopped = farm(up_config.source, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines()[0] == "stopped: redis, worker, beat, exporter"
    sessions = {after.supervisor_pid, *(s.pid for s in after.services if s.pid)}
    assert sessions_alive(sessions) == []
    assert QemuVm(config.host(HOST), config.data_dir).pid() is None
    assert read_state(up_config.data_dir) is None
    assert farm(up_config.source, "up", "--status").returncode == 3
