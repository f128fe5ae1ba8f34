# SPDX-License-Identifier: Apache-2.0
"""Copy a directory from another farm machine: rsync over OpenSSH, host key verified.

A worker that boots a kernel another worker built fetches the artefacts from the
builder's data directory this way. The same rules as farm's own SSH transport hold:
only farm's client key is offered, the builder's host key must already be in farm's
known_hosts (never learnt on first use), no ~/.ssh/config is read, and rsync runs with
``--protect-args`` so the remote path is never split by the remote shell.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farm.errors import InfraError, UserError
from farm.hosts.keys import client_key, known_hosts_path


@dataclass(frozen=True)
class SshSource:
    """``USER@HOST[:PORT]``: where a builder's files are fetched from."""

    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, address: str) -> SshSource:
        user, at, rest = address.partition("@")
        host, colon, port = rest.partition(":")
        if not (user and at and host) or (colon and not port.isdigit()):
            raise UserError(f"{address!r} is not USER@HOST[:PORT]")
        return cls(user, host, int(port) if colon else 22)


def ssh_command(source: SshSource, data_dir: Path, connect_timeout: float = 10.0) -> list[str]:
    """The ssh that rsync runs: farm's key and known_hosts only, no prompt."""
    return [
        "ssh", "-F", "/dev/null", "-p", str(source.port),
        "-i", str(client_key(data_dir)), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts_path(data_dir)}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(connect_timeout))}",
    ]  # fmt: skip


def pull(
    source: SshSource, remote_dir: str, local_dir: Path, *, data_dir: Path, timeout: float
) -> None:
    """Copy the files of ``remote_dir`` on ``source`` into ``local_dir`` (created)."""
    local_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        "rsync", "--archive", "--protect-args", "--timeout", str(max(1, round(timeout))),
        "-e", shlex.join(ssh_command(source, data_dir)),
        f"{source.user}@{source.host}:{remote_dir.rstrip('/')}/", f"{local_dir}/",
    ]  # fmt: skip
    label = f"{source.user}@{source.host}:{source.port}:{remote_dir}"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise InfraError("rsync is not installed", hint="apt-get install rsync") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"fetching {label} took longer than {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise InfraError(f"cannot fetch {label}: {done.stderr.strip()[-500:]}")
