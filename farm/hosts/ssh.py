# SPDX-License-Identifier: Apache-2.0
"""The SSH transport: the only module that imports Fabric and paramiko.

Security defaults that cannot be switched off by accident:
- host keys are checked against farm's own known_hosts with a RejectPolicy: an unknown
  or changed key is refused with the fingerprint and the command that trusts it;
- no ~/.ssh/config, no ~/.fabric.yaml, no agent and no ~/.ssh keys unless configured:
  only the host's configured key (or farm's own) is offered;
- connect, banner, auth and command timeouts are always set.

Commands run on a raw paramiko channel rather than Fabric's Invoke runner, because
the runner decodes streams as text and feeds stdin character by character: farm needs
byte-exact stdin/stdout (file transfer without SFTP, which dropbear lacks) and a hard
deadline per command. Every paramiko or socket exception is translated here.
"""

from __future__ import annotations

import logging
import select
import shlex
import socket
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import paramiko
from fabric import Config, Connection

from farm.errors import UserError
from farm.hosts.base import (
    CommandFailed,
    CommandResult,
    CommandTimeout,
    HostKeyError,
    HostUnreachable,
    SshEndpoint,
    Transport,
)
from farm.hosts.keys import fingerprint, host_pattern

_CHUNK = 1 << 16
# paramiko's transport thread logs tracebacks of failures we translate and raise anyway.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def _public_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


class _RejectUnknown(paramiko.RejectPolicy):
    """RejectPolicy that says which key was refused and how to trust it."""

    def __init__(self, endpoint: SshEndpoint) -> None:
        self.endpoint = endpoint

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> NoReturn:
        ep, offered = self.endpoint, fingerprint(_public_line(key))
        raise HostKeyError(
            f"host key of {ep.label} ({offered}) is not in farm's known_hosts "
            f"{ep.known_hosts}; farm never accepts a key on first sight",
            hint=ep.rekey_hint
            or f"check {offered} on the host's console, then "
            f"`farm hosts trust {ep.name} --fingerprint {offered}`",
        )


class SshTransport(Transport):
    """A connected SSH session to one host; create it with :func:`connect`."""

    def __init__(self, endpoint: SshEndpoint, connection: Connection) -> None:
        self.endpoint = endpoint
        self._connection = connection

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        command = argv if isinstance(argv, str) else shlex.join(argv)
        code, out, err = self._exec(command, stdin, timeout or self.endpoint.command_timeout)
        result = CommandResult(
            command, code, out.decode(errors="replace"), err.decode(errors="replace")
        )
        if check and not result.ok:
            detail = (result.stderr or result.stdout).strip()[-2000:]
            raise CommandFailed(
                f"{self.endpoint.label}: `{command}` exited {code}"
                + (f": {detail}" if detail else "")
            )
        return result

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o644) -> None:
        # Written beside the target and renamed: a dropped connection leaves no half file.
        target = shlex.quote(remote_path)
        tmp = shlex.quote(f"{remote_path}.farm-part")
        self.run(
            f"cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {target}",
            stdin=data,
        )

    def get(self, remote_path: str) -> bytes:
        code, out, err = self._exec(
            shlex.join(["cat", "--", remote_path]), None, self.endpoint.command_timeout
        )
        if code != 0:
            raise CommandFailed(
                f"{self.endpoint.label}: cannot read {remote_path}: {err.decode(errors='replace')}"
            )
        return out

    def close(self) -> None:
        self._connection.close()

    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> tuple[int, bytes, bytes]:
        deadline = time.monotonic() + timeout
        transport = self._connection.client.get_transport()
        if transport is None or not transport.is_active():
            raise HostUnreachable(f"{self.endpoint.label}: the SSH connection is closed")
        try:
            channel = transport.open_session(timeout=self.endpoint.connect_timeout)
            try:
                return self._communicate(channel, command, stdin, deadline, timeout)
            finally:
                channel.close()
        except TimeoutError as exc:
            self._timed_out(command, timeout, exc)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = str(exc) or type(exc).__name__
            raise HostUnreachable(
                f"{self.endpoint.label}: connection lost during `{command}`: {reason}"
            ) from exc

    def _communicate(
        self,
        channel: paramiko.Channel,
        command: str,
        stdin: bytes | None,
        deadline: float,
        timeout: float,
    ) -> tuple[int, bytes, bytes]:
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()
        while True:
            while channel.recv_ready():
                out += channel.recv(_CHUNK)
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(_CHUNK)
            # sshd may send exit-status before the last data: only EOF means all is here.
            finished = channel.eof_received or channel.closed
            if (
                finished
                and channel.exit_status_ready()
                and not (channel.recv_ready() or channel.recv_stderr_ready())
            ):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._timed_out(command, timeout, None)
            select.select([channel], [], [], min(remaining, 0.2))
        code = channel.recv_exit_status()
        if code == -1 and not channel.get_transport().is_active():
            raise HostUnreachable(
                f"{self.endpoint.label}: connection dropped during `{command}` "
                "(the host crashed, rebooted or lost its network)"
            )
        return code, bytes(out), bytes(err)

    def _timed_out(self, command: str, timeout: float, exc: BaseException | None) -> NoReturn:
        raise CommandTimeout(
            f"{self.endpoint.label}: `{command}` did not finish within {timeout:g}s",
            hint="raise command_timeout in the host's farm.toml entry if the host is just slow",
        ) from exc


def _connection(endpoint: SshEndpoint) -> Connection:
    # An explicit empty SSHConfig and lazy=True: no ssh_config or fabric.yaml files load.
    config = Config(lazy=True, ssh_config=paramiko.SSHConfig())
    connection = Connection(
        endpoint.address,
        user=endpoint.user,
        port=endpoint.port,
        config=config,
        forward_agent=False,
        connect_kwargs={
            "key_filename": [str(endpoint.key)],
            "look_for_keys": False,
            "allow_agent": endpoint.allow_agent,
            # Fabric int()s its own connect_timeout, so the float goes in here.
            "timeout": endpoint.connect_timeout,
            "banner_timeout": endpoint.connect_timeout,
            "auth_timeout": endpoint.connect_timeout,
            "channel_timeout": endpoint.connect_timeout,
        },
    )
    client = connection.client
    client.set_missing_host_key_policy(_RejectUnknown(endpoint))
    if endpoint.known_hosts.exists():
        # "system" host keys are never written back, unlike load_host_keys().
        client.load_system_host_keys(str(endpoint.known_hosts))
    return connection


def connect(endpoint: SshEndpoint) -> SshTransport:
    """Open an authenticated session, or raise a farm error saying who must act."""
    if not endpoint.key.exists():
        raise UserError(
            f"SSH key {endpoint.key} of host {endpoint.name} does not exist",
            hint="fix `key` in the host's farm.toml entry",
        )
    connection = _connection(endpoint)
    try:
        connection.open()
    except paramiko.BadHostKeyException as exc:
        connection.close()
        raise _changed_key(endpoint, exc) from exc
    except paramiko.AuthenticationException as exc:
        # A host that crashes or reboots mid-handshake ends the transport during
        # authentication; paramiko reports that as an authentication failure too.
        transport = connection.client.get_transport()
        dropped = transport is None or not transport.is_active() or "EOF" in str(exc)
        connection.close()
        if dropped:
            raise HostUnreachable(
                f"{endpoint.label} dropped the connection during authentication: {exc}"
            ) from exc
        raise UserError(
            f"{endpoint.label} refused farm's key {endpoint.key} for user {endpoint.user}: {exc}",
            hint=f"append {endpoint.key}.pub to ~{endpoint.user}/.ssh/authorized_keys on the host",
        ) from exc
    except HostKeyError:
        connection.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        connection.close()
        reason = "timed out" if isinstance(exc, TimeoutError | socket.timeout) else str(exc)
        raise HostUnreachable(
            f"cannot connect to {endpoint.label}: {reason or type(exc).__name__}"
        ) from exc
    return SshTransport(endpoint, connection)


def _changed_key(endpoint: SshEndpoint, exc: paramiko.BadHostKeyException) -> HostKeyError:
    offered = fingerprint(_public_line(exc.key))
    expected = fingerprint(_public_line(exc.expected_key))
    return HostKeyError(
        f"host key of {endpoint.label} does not match farm's known_hosts "
        f"{endpoint.known_hosts}: it offered {offered}, farm expects {expected}. "
        "Refusing to connect: someone may be impersonating the host",
        hint=endpoint.rekey_hint
        or f"if {endpoint.name} was reinstalled, check {offered} on its console, then "
        f"`farm hosts trust {endpoint.name} --fingerprint {offered}`",
    )


def fetch_host_key(endpoint: SshEndpoint) -> str:
    """The public key line the host offers, without authenticating (for `farm hosts trust`)."""
    try:
        sock = socket.create_connection(
            (endpoint.address, endpoint.port), timeout=endpoint.connect_timeout
        )
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = endpoint.connect_timeout
            transport.start_client(timeout=endpoint.connect_timeout)
            return _public_line(transport.get_remote_server_key())
        finally:
            transport.close()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostUnreachable(f"cannot read the host key of {endpoint.label}: {exc}") from exc


def known_hosts_name(endpoint: SshEndpoint) -> str:
    return host_pattern(endpoint.address, endpoint.port)
