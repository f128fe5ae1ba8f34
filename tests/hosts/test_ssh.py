# SPDX-License-Identifier: Apache-2.0
"""The SSH transport against a real OpenSSH sshd on a loopback port."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from conftest import Sshd
from netutil import free_port

from farm.errors import InfraError, UserError
from farm.hosts import (
    CommandFailed,
    CommandTimeout,
    HostKeyError,
    HostUnreachable,
    keys,
)
from farm.hosts.ssh import connect, fetch_host_key

HOSTILE = [
    "$(reboot); rm -rf /",
    "`touch /tmp/pwned`",
    'it\'s "quoted" \\ and ; | & > <',
    "line one\nline two",
    "*",
    "",
    "--help",
]


def test_runs_commands_and_reports_exit_code_and_streams(sshd: Sshd) -> None:
    with connect(sshd.endpoint) as ssh:
        result = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok


def test_a_failing_command_raises_with_its_stderr(sshd: Sshd) -> None:
    with connect(sshd.endpoint) as ssh, pytest.raises(CommandFailed) as failed:
        ssh.run(["ls", "/no/such/dir"])
    assert isinstance(failed.value, InfraError)
    assert "exited 2" in str(failed.value) and "/no/such/dir" in str(failed.value)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_arguments_arrive_verbatim_and_never_reach_a_shell(
    sshd: Sshd, value: str, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    with connect(sshd.endpoint) as ssh:
        echoed = ssh.run(["printf", "%s", value]).stdout
        ssh.run(["echo", f"$(touch {canary})", f"`touch {canary}`", f"; touch {canary}"])
    assert echoed == value
    assert not canary.exists()


def test_stdin_is_passed_byte_exact(sshd: Sshd) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB with every byte value, NULs included
    with connect(sshd.endpoint) as ssh:
        result = ssh.run(["sha256sum"], stdin=data)
    expected = subprocess.run(["sha256sum"], input=data, capture_output=True, check=True).stdout
    assert result.stdout.split()[0] == expected.decode().split()[0]


def test_put_and_get_round_trip_binary_files_without_sftp(sshd: Sshd, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    target = tmp_path / "dir with space" / "it's $(here)"
    target.parent.mkdir()
    with connect(sshd.endpoint) as ssh:
        ssh.put(data, str(target), mode=0o600)
        back = ssh.get(str(target))
        with pytest.raises(CommandFailed, match="cannot read"):
            ssh.get(str(tmp_path / "missing"))
    assert back == data
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == 0o600
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def test_a_command_past_its_timeout_raises_infra_error_and_the_session_survives(
    sshd: Sshd,
) -> None:
    with connect(sshd.endpoint) as ssh:
        with pytest.raises(CommandTimeout) as timed_out:
            ssh.run(["sleep", "30"], timeout=1)
        assert isinstance(timed_out.value, InfraError)
        assert "did not finish within 1s" in str(timed_out.value)
        assert ssh.run(["echo", "still here"]).stdout == "still here\n"


def test_a_dropped_connection_is_host_unreachable(sshd: Sshd) -> None:
    with connect(sshd.endpoint) as ssh, pytest.raises(HostUnreachable) as dropped:
        # Kill the sshd process serving this session, as a crashing host would.
        ssh.run(["sh", "-c", "kill -9 $PPID; sleep 5"])
    assert isinstance(dropped.value, InfraError)


def test_a_closed_port_is_host_unreachable(sshd: Sshd) -> None:
    endpoint = dataclasses.replace(sshd.endpoint, port=free_port())
    with pytest.raises(HostUnreachable) as unreachable:
        connect(endpoint)
    assert f"cannot connect to laptop (127.0.0.1:{endpoint.port})" in str(unreachable.value)


def test_an_unknown_host_key_is_refused_and_never_recorded(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError) as refused:
        connect(dataclasses.replace(sshd.endpoint, known_hosts=empty))
    message = str(refused.value)
    offered = keys.fingerprint(sshd.host_key)
    assert isinstance(refused.value, UserError)
    assert f"host key of laptop (127.0.0.1:{sshd.port}) ({offered}) is not in farm's" in message
    assert f"farm hosts trust laptop --fingerprint {offered}" in message
    assert empty.read_text() == ""


def test_a_changed_host_key_is_refused_with_what_to_do(sshd: Sshd, tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True
    )
    other = (tmp_path / "other.pub").read_text()
    known_hosts = tmp_path / "known_hosts"
    keys.record_host_key(known_hosts, f"[127.0.0.1]:{sshd.port}", other, "old-install")
    with pytest.raises(HostKeyError) as refused:
        connect(dataclasses.replace(sshd.endpoint, known_hosts=known_hosts))
    message = str(refused.value)
    offered, expected = keys.fingerprint(sshd.host_key), keys.fingerprint(other)
    assert f"host key of laptop (127.0.0.1:{sshd.port}) does not match" in message
    assert str(known_hosts) in message
    assert f"it offered {offered}, farm expects {expected}" in message
    assert f"if laptop was reinstalled, check {offered} on its console" in message
    assert f"farm hosts trust laptop --fingerprint {offered}" in message


def test_ssh_config_and_fabric_files_of_the_user_are_ignored(
    sshd: Sshd, home_with_hostile_ssh_config: Path
) -> None:
    with connect(sshd.endpoint) as ssh:
        assert ssh.run(["echo", "ok"]).stdout == "ok\n"


def test_fetch_host_key_reads_the_key_without_logging_in(sshd: Sshd) -> None:
    assert fetch_host_key(sshd.endpoint) == sshd.host_key


def test_a_missing_client_key_is_a_configuration_error(sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"SSH key .*/nope of host laptop does not exist"):
        connect(dataclasses.replace(sshd.endpoint, key=tmp_path / "nope"))


def test_a_key_the_host_does_not_accept_is_a_configuration_error(
    sshd: Sshd, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(UserError, match="refused farm's key") as refused:
        connect(dataclasses.replace(sshd.endpoint, key=stranger))
    assert "authorized_keys" in str(refused.value)  # says what to do, not "unreachable"
