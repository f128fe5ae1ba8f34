# SPDX-License-Identifier: Apache-2.0
"""Secrets planted where a farm controller keeps them, and a probe that goes for them.

The probe is what a hostile patch would put in a Makefile rule: it prints the SSH key
in $HOME/.ssh, farm.toml with the database password, the API token in the data
directory, the FARM_* variables of the worker's environment, and tries to reach a
listener on loopback (where Redis and PostgreSQL listen). Each secret carries a unique
marker, so a test asserts that no marker reaches the probe's output.

Everything lives under /var/tmp, not /tmp: the sandbox replaces /tmp as a whole, and
the tests must show that the home, configuration and data directories are hidden by
their own rules.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RAN = "hostile rule ran"
_SAYS = (RAN, "ssh key", "config:", "api token:", "environment:", "network:", "source tree:")


@dataclass(frozen=True)
class Planted:
    root: Path
    home: Path
    config: Path
    data_dir: Path
    markers: dict[str, str]  # what -> the unique string in that secret
    listener: socket.socket

    def probe(self, read_only: Path | str) -> list[str]:
        """Shell lines, one command each; ``read_only`` is a directory they try to write."""
        return [
            f"echo '{RAN}'",
            f'echo "ssh key: $(cat {self.home}/.ssh/id_ed25519 2>&1)"',
            'echo "ssh key via HOME: $(cat $HOME/.ssh/id_ed25519 2>&1)"',
            f'echo "config: $(cat {self.config} 2>&1)"',
            f'echo "api token: $(cat {self.data_dir}/api-token 2>&1)"',
            'echo "environment: $FARM_SECRET $FARM_BROKER_URL $SSH_AUTH_SOCK"',
            f"echo \"network: $(bash -c 'exec 3<>/dev/tcp/127.0.0.1/{self.port} && echo "
            "connected' 2>&1)\"",
            f'echo "source tree: $(touch {read_only}/farm-was-here 2>&1 && echo written)"',
        ]

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    def connections(self) -> int:
        """Connections made to the listener (completed by the kernel, never accepted)."""
        self.listener.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    @staticmethod
    def output(text: str) -> str:
        """The probe's lines in ``text`` (a build log), to show in a failed assertion."""
        return "\n".join(line for line in text.splitlines() if line.startswith(_SAYS))

    def leaked(self, text: str) -> list[str]:
        """The secrets whose marker appears in ``text``."""
        return sorted(what for what, marker in self.markers.items() if marker in text)


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Planted]:
    root = Path(tempfile.mkdtemp(prefix="farm-secrets-", dir="/var/tmp"))
    markers = {
        what: f"{what.upper()}-{uuid.uuid4().hex}"
        for what in ("ssh_key", "config", "api_token", "env", "broker", "agent")
    }
    home, config, data_dir = root / "home", root / "etc" / "farm" / "farm.toml", root / "data"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{markers['ssh_key']}\n"
    )
    config.parent.mkdir(parents=True)
    config.write_text(
        f'database_url = "postgresql+psycopg://farm:{markers["config"]}@10.0.0.1/farm"\n'
    )
    data_dir.mkdir()
    (data_dir / "api-token").write_text(markers["api_token"])
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FARM_CONFIG", str(config))
    monkeypatch.setenv("FARM_SECRET", markers["env"])
    monkeypatch.setenv("FARM_BROKER_URL", f"redis://:{markers['broker']}@127.0.0.1:6379/0")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(home / ".ssh" / f"agent-{markers['agent']}"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield Planted(root, home, config, data_dir, markers, listener)
    shutil.rmtree(root, ignore_errors=True)
