# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures of the scheduler, soak and metrics tests: a real sshd host, a farm.toml
with short soak timings, and a private Redis + Celery stack (farm.services).

The "host" of these tests is this machine reached through a real OpenSSH sshd on a
loopback port: the soak really runs a detached load over SSH and samples the real
/proc. Build and boot are skipped by ``details={"kernel": "running"}`` (soak the
running kernel, as a bare-metal host that cannot be rebooted would); the QEMU tests
boot real kernels.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbfixtures import database_toml_line
from netutil import free_port, wait_listening

from farm.config import FarmConfig, load_config
from farm.hosts import keys
from farm.hosts.qemu import QemuVm
from farm.services import LocalServices
from farm.store import Store

SSHD = Path("/usr/sbin/sshd")
TEST_LOADS = Path(__file__).parent / "soak" / "loads"


@dataclass(frozen=True)
class SshHost:
    port: int
    data_dir: Path
    remote_dir: Path  # the run directories the loads write on the "host"


@contextlib.contextmanager
def running_sshd(base: Path) -> Iterator[SshHost]:
    """An OpenSSH sshd on a loopback port that trusts only farm's client key, its host
    key recorded in farm's known_hosts (never auto-added); its files under ``base``."""
    root = base / "sshd"
    root.mkdir()
    data_dir = base / "data"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")], check=True
    )
    (root / "authorized_keys").write_text(keys.client_public_key(data_dir) + "\n")
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n"
        "MaxStartups 100\nMaxSessions 100\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")])
    remote_dir = base / "remote"
    try:
        wait_listening(port, process)
        host_key = " ".join((root / "host_key.pub").read_text().split()[:2])
        keys.record_host_key(
            keys.known_hosts_path(data_dir), f"[127.0.0.1]:{port}", host_key, "test-sshd"
        )
        yield SshHost(port, data_dir, remote_dir)
    finally:
        _kill_loads(remote_dir)
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def ssh_host(tmp_path: Path) -> Iterator[SshHost]:
    with running_sshd(tmp_path) as host:
        yield host


def _kill_loads(remote_dir: Path) -> None:
    """Loads run detached on purpose; a test must not leave one behind. Each load is
    its own session (setsid), so its pid is its process group. Not through procps'
    kill(1): it ran `kill -KILL -742` as kill(-7, SIGKILL) (seen with strace), so a pid
    starting with 1 became kill(-1, SIGKILL), every process on the machine."""
    for pid_file in remote_dir.glob("run-*/pid"):
        pid = pid_file.read_text().strip()
        if pid.isdigit() and int(pid) > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)


def write_farm_toml(
    path: Path,
    ssh: SshHost,
    *,
    hosts: tuple[str, ...] = ("laptop",),
    interval: float = 1.0,
    extra: str = "",
    host_extra: str = "",
    top: str = "",
) -> Path:
    """A farm.toml whose hosts are all the test sshd, with second-scale timings; ``top``
    goes before the first section (a database_url line)."""
    lines = [
        top,
        f'data_dir = "{ssh.data_dir}"',
        f'loads_dir = "{TEST_LOADS}"',
        "",
        "[scheduler]",
        f"sample_interval = {interval}",
        "hang_grace = 2.0",
        "lease_seconds = 3.0",
        "reconcile_seconds = 1.0",
        "overdue_seconds = 4.0",
        "visibility_timeout = 600.0",
        f'remote_dir = "{ssh.remote_dir}"',
        extra,
    ]
    for name in hosts:
        lines += [
            "",
            "[[hosts]]",
            f'name = "{name}"',
            'kind = "ssh"',
            'address = "127.0.0.1"',
            f"port = {ssh.port}",
            f'user = "{getpass.getuser()}"',
            "connect_timeout = 5",
            "command_timeout = 30",
            host_extra,
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def soak_config(
    tmp_path: Path,
    ssh_host: SshHost,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> FarmConfig:
    path = write_farm_toml(tmp_path / "farm.toml", ssh_host, top=database_toml_line(request))
    monkeypatch.setenv("FARM_CONFIG", str(path))
    for name in ("FARM_DATABASE_URL", "FARM_BROKER_URL", "FARM_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return load_config(path)


@pytest.fixture
def soak_store(soak_config: FarmConfig, database_url: str | None) -> Iterator[Store]:
    """On SQLite and on PostgreSQL: the workers and beat a test starts use it too."""
    assert soak_config.db_url == (database_url or soak_config.db_url), "no database_url"
    store = Store(soak_config.db_url)
    yield store
    store.dispose()


@pytest.fixture
def stack(soak_config: FarmConfig, tmp_path: Path) -> Iterator[LocalServices]:
    """A private redis-server; tests start workers and beat as they need them."""
    assert soak_config.source is not None
    with LocalServices(soak_config.source, tmp_path / "logs") as local:
        yield local


@contextlib.contextmanager
def qemu_services(
    config: FarmConfig, log_dir: Path, hosts: tuple[str, ...]
) -> Iterator[tuple[FarmConfig, Store, LocalServices]]:
    """A private Redis, one worker serving ``hosts`` and beat, for QEMU hosts; the VMs
    are stopped at the end whatever happened."""
    assert config.source is not None
    store = Store(config.db_url)
    with LocalServices(config.source, log_dir) as local:
        config = config.model_copy(update={"broker_url": local.broker_url})
        local.start_worker("worker-1", hosts=list(hosts), concurrency=3)
        local.start_beat()
        try:
            yield config, store, local
        finally:
            for name in hosts:
                QemuVm(config.host(name), config.data_dir).stop()
            store.dispose()
