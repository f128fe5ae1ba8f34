# SPDX-License-Identifier: Apache-2.0
"""A farm on three machines, simulated by network namespaces (tests/netns.py).

The controller (10.77.0.1) runs Redis and PostgreSQL, both with passwords and listening
on its network address, and farm beat, api and exporter. Two worker machines (10.77.0.2
and .3) join with the controller's join token and each serve one QEMU host, whose SSH
port is forwarded on the worker's own loopback: only that worker can reach it. A run
queued on the controller for worker B's host soaks there; worker B is killed mid-soak
(its QEMU host soaks on), `farm status` shows the run out of contact, a restarted B
picks the run up where it was, and the run ends PASS with its load started once.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_fixtures import KernelBuildEnv
from netns import Network, why_no_namespaces
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.config import FarmConfig, load_config
from farm.hosts import get_host
from farm.hosts.qemu import QemuVm
from farm.scheduler.api import queue_run, wait_for_runs
from farm.services import LocalPostgres, LocalServices
from farm.soak.load import starts_log
from farm.store import Store
from farm.store.runs import RunKind, RunState
from farm.store.samples import Sample

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel]

MACHINES = ("ctl", "wa", "wb")
HOSTS = {"wa": "hosta", "wb": "hostb"}  # the QEMU host each worker machine serves
SOAK_SECONDS = 45
SLEEP_LOAD = """name = "sleep-soak"
description = "Sleeps until its deadline: the soak of a machine that only has to stay up."
duration = "1m"
script = '''
end=$(( $(date +%s) + FARM_SECONDS ))
while [ "$(date +%s)" -lt "$end" ]; do sleep 1; done
'''
"""


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    reason = why_no_namespaces()
    if reason:
        pytest.skip(f"worker machines are simulated by network namespaces: {reason}")
    net = Network(f"farm{os.getpid()}", MACHINES)
    net.create()
    try:
        yield net
    finally:
        net.delete()


def farm_toml(path: Path, data_dir: Path, build: KernelBuildEnv, top: str = "") -> Path:
    """The farm.toml of one machine: the same hosts and timings everywhere; ``top`` adds
    what only the controller has (its database)."""
    hosts = "".join(
        f'[[hosts]]\nname = "{name}"\nkind = "qemu"\nboot_timeout = 240\n'
        "[hosts.qemu]\nmemory_mb = 256\nssh_port = 10022\n"
        for name in HOSTS.values()
    )
    loads = path.parent / "loads"
    loads.mkdir(parents=True, exist_ok=True)
    (loads / "sleep-soak.toml").write_text(SLEEP_LOAD)
    path.write_text(
        f'{top}data_dir = "{data_dir}"\nloads_dir = "{loads}"\n'
        "[scheduler]\nsample_interval = 2.0\nhang_grace = 10.0\nlease_seconds = 10.0\n"
        "reconcile_seconds = 2.0\noverdue_seconds = 6.0\nheartbeat_seconds = 1.0\n\n"
        f'[[trees]]\nname = "linux"\npath = "{build.tree}"\n\n{hosts}'
    )
    return path


class WorkerMachine:
    """`farm worker --join TOKEN` started inside a worker namespace, with no broker or
    database of its own: the token is all it knows of the controller."""

    def __init__(self, net: Network, machine: str, toml: Path, token: Path, logs: Path) -> None:
        self.net, self.machine, self.toml, self.token, self.logs = net, machine, toml, token, logs
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        private = ("FARM_CONFIG", "FARM_BROKER_URL", "FARM_DATABASE_URL", "FARM_DATA_DIR")
        env = {k: v for k, v in os.environ.items() if k not in private}
        argv = [
            sys.executable,
            "-m",
            "farm",
            "--config",
            str(self.toml),
            "worker",
            "--join",
            str(self.token),
            "--hosts",
            HOSTS[self.machine],
            "--name",
            self.machine,
        ]
        with self.net.inside(self.machine), (self.logs / f"{self.machine}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL to the worker's process group: the QEMU host, in its own session,
        soaks on, as a test machine does when the machine driving it dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return (self.logs / f"{self.machine}.log").read_text(errors="replace")


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_a_run_on_a_worker_machine_survives_the_worker_dying_and_resumes_once(
    network: Network,
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,
    tmp_path: Path,
) -> None:
    ctl_address = network.addresses["ctl"]
    logs = tmp_path / "logs"
    logs.mkdir()
    worker_toml = farm_toml(
        tmp_path / "worker" / "farm.toml", kernel_build_env.data_dir, kernel_build_env
    )
    token = tmp_path / "worker" / "join-token"
    workers = {m: WorkerMachine(network, m, worker_toml, token, logs) for m in HOSTS}
    with (
        network.inside("ctl"),
        LocalPostgres(host=ctl_address, clients=network.cidr) as postgres,
    ):
        postgres.execute("CREATE DATABASE farm")
        ctl_toml = farm_toml(
            tmp_path / "ctl" / "farm.toml",
            tmp_path / "ctl" / "data",
            kernel_build_env,
            top=f'database_url = "{postgres.url("farm")}"\n',
        )
        with LocalServices(ctl_toml, logs, bind=ctl_address) as controller:
            config = load_config(ctl_toml).model_copy(update={"broker_url": controller.broker_url})
            store = Store(config.db_url)
            try:
                worker_config = load_config(worker_toml)
                run_the_story(
                    network, controller, config, worker_config, store, workers, token, soak_kernel
                )
            finally:
                for worker in workers.values():
                    worker.stop()
                for name in HOSTS.values():
                    QemuVm(config.host(name), kernel_build_env.data_dir).stop()
                store.dispose()


def run_the_story(
    network: Network,
    controller: LocalServices,
    config: FarmConfig,
    worker_config: FarmConfig,
    store: Store,
    workers: dict[str, WorkerMachine],
    token: Path,
    kernel: KernelArtifacts,
) -> None:
    ctl_address = network.addresses["ctl"]
    api_token = config.data_dir / "api-token"
    config.data_dir.mkdir(parents=True)
    api_token.touch(mode=0o600)
    api_token.write_text("netns-test-token\n")
    controller.start_beat()
    controller.start("api", ["api", "--bind", ctl_address])
    controller.start("exporter", ["exporter", "--bind", ctl_address])

    made = farm(controller, "join-token", "--output", str(token), "--json")
    assert made["broker_url"] == f"redis://:***@{ctl_address}:{controller.port}/0"
    assert token.stat().st_mode & 0o777 == 0o600
    assert controller.password not in json.dumps(made)
    for worker in workers.values():
        worker.start()
    wait_until("both workers registered", lambda: len(live_workers(controller)) == 2, 120)
    status = farm(controller, "status", "--json")
    assert {h["name"]: h["workers"] for h in status["hosts"]} == {
        "hosta": [f"wa@{os.uname().nodename}"],
        "hostb": [f"wb@{os.uname().nodename}"],
    }

    run_id = queue_run(
        config,
        store,
        kind=RunKind.HEALTH,
        host="hostb",
        commit=kernel.commit,
        load="sleep-soak",
        soak_seconds=SOAK_SECONDS,
    )
    queued_at = time.time()
    wait_until("run soaking with 2 samples", lambda: soaking_samples(store, run_id) >= 2, 400)
    print(f"run {run_id} soaking on hostb {time.time() - queued_at:.0f} s after queueing")
    workers["wb"].kill()
    killed_at = time.time()
    wait_until("the run out of contact", lambda: lost_contact(controller, run_id), 60)
    print(f"farm status: lost contact {time.time() - killed_at:.1f} s after the kill")
    workers["wb"].start()

    [final] = wait_for_runs(store, [run_id], timeout=300, poll=2)

    assert (final.state, final.verdict) == ("done", "PASS"), (final, workers["wb"].log()[-3000:])
    assert not lost_contact(controller, run_id)
    with store.session() as session:
        times = list(
            session.scalars(
                select(Sample.ts)
                .where(Sample.run_id == run_id, Sample.phase == "soak")
                .order_by(Sample.ts)
            )
        )
    assert any(t > killed_at for t in times), "the restarted worker sampled the host"
    gap = max(b - a for a, b in itertools.pairwise(times))
    print(f"run {run_id}: {len(times)} soak samples, longest gap {gap:.1f} s (worker B away)")
    with network.inside("wb"), get_host(worker_config, "hostb").transport() as ssh:
        starts = [s for s in starts_log(ssh, config.scheduler.remote_dir) if f"run-{run_id} " in s]
    assert len(starts) == 1, starts  # the load was started once, before and after
    assert "Task farm.advance[" not in workers["wa"].log()  # steps of hostb went to hostb's worker
    metrics = http_get(f"http://{ctl_address}:9478/metrics")
    assert f'run="{run_id}",' in metrics
    assert http_get(f"http://{ctl_address}:9479/healthz")
    for log in (controller.log(n) for n in ("beat", "api", "exporter")):
        assert controller.password not in log
    for worker in workers.values():
        assert controller.password not in worker.log()


def farm(controller: LocalServices, *args: str) -> Any:
    """``farm ARGS`` on the controller, its JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "farm", *args],
        env=controller.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def live_workers(controller: LocalServices) -> list[str]:
    return [w["name"] for w in farm(controller, "status", "--json")["workers"] if w["alive"]]


def lost_contact(controller: LocalServices, run_id: int) -> bool:
    runs = farm(controller, "status", "--json")["runs"]
    return any(r["id"] == run_id and r["lost_contact"] for r in runs)


def soaking_samples(store: Store, run_id: int) -> int:
    from farm.store.runs import Run

    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None or run.state != RunState.SOAKING:
            return 0
        return len(session.scalars(select(Sample.id).where(Sample.run_id == run_id)).all())


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())
