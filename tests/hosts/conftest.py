# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the hosts stage: a real OpenSSH sshd on a loopback port.

The sshd has its own host key and accepts only farm's client key; it offers no SFTP
subsystem, like dropbear on the QEMU hosts, so file transfer must work without it.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netutil import free_port, wait_listening

from farm.hosts import SshEndpoint, keys

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class Sshd:
    port: int
    host_key: str  # "ssh-ed25519 AAAA..."
    endpoint: SshEndpoint  # farm's view, with the host key recorded in its known_hosts
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD.exists():
        pytest.fail("openssh-server is not installed (make apt)")
    root = tmp_path_factory.mktemp("sshd")
    data_dir = root / "data"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")], check=True
    )
    host_key = " ".join((root / "host_key.pub").read_text().split()[:2])
    client_key = keys.client_key(data_dir)
    (root / "authorized_keys").write_text(keys.client_public_key(data_dir) + "\n")
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "LogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, process)
        known_hosts = keys.known_hosts_path(data_dir)
        keys.record_host_key(known_hosts, f"[127.0.0.1]:{port}", host_key, "test-sshd")
        endpoint = SshEndpoint(
            name="laptop",
            address="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            key=client_key,
            known_hosts=known_hosts,
            connect_timeout=5,
            command_timeout=30,
        )
        yield Sshd(port, host_key, endpoint, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def home_with_hostile_ssh_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A $HOME whose ~/.ssh/config and ~/.fabric.yaml would redirect every connection."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  Port 1\n  User nobody\n  Hostname 10.9.9.9\n")
    (home / ".fabric.yaml").write_text("user: nobody\nport: 1\n")
    monkeypatch.setenv("HOME", str(home))
    assert os.path.expanduser("~") == str(home)
    return home
