# SPDX-License-Identifier: Apache-2.0
"""Power plugins: the command plugin runs real programs on the controller, never a shell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from farm.config import FarmConfig, HostConfig, PowerConfig, load_config
from farm.errors import InfraError, UserError
from farm.hosts import get_host


def command_host(tmp_path: Path, **power: str | float) -> HostConfig:
    return HostConfig(
        name="laptop",
        kind="ssh",
        address="pc-7.lab",
        user="farm",
        power=PowerConfig(kind="command", **power),
    )


def farm_with(host: HostConfig, tmp_path: Path) -> FarmConfig:
    return FarmConfig(data_dir=tmp_path / "data", hosts=[host])


def test_each_placeholder_fills_its_own_argument_even_inside_quotes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    # The one safe way to use a shell: the values arrive as its positional arguments.
    record = f'sh -c \'printf "%s|" "$@" >> {log}; echo >> {log}\' record'
    host = command_host(
        tmp_path,
        on=f"{record} on {{name}} '{{address}}' {{port}} \"{{user}}@{{address}}\"",
        off=f"{record} off {{name}}-bmc",
    )
    power = get_host(farm_with(host, tmp_path), "laptop").power
    power.on()
    power.cycle()  # no cycle template: off, then on
    assert log.read_text().splitlines() == [
        "on|laptop|pc-7.lab|22|farm@pc-7.lab|",
        "off|laptop-bmc|",
        "on|laptop|pc-7.lab|22|farm@pc-7.lab|",
    ]
    assert power.state() == "unknown"


def test_a_template_is_an_argument_list_not_a_shell_script(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    host = command_host(tmp_path, on=f"echo on > {marker}; touch {marker}", off="true")
    get_host(farm_with(host, tmp_path), "laptop").power.on()
    assert not marker.exists(), "'>' and ';' are words for echo, not shell syntax"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("address", "$(touch pwned)"),
        ("address", "-oProxyCommand=touch pwned"),
        ("address", "pc 7.lab"),
        ("address", "fe80::1%$(touch pwned)"),
        ("user", "o'brien; touch pwned"),
    ],
)
def test_inventory_values_that_are_not_names_are_refused_when_the_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)  # where `touch pwned` would land
    path = tmp_path / "farm.toml"
    host = {"address": "pc-7.lab", "user": "farm", key: value}
    path.write_text(
        f'[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "{host["address"]}"\n'
        f'user = "{host["user"]}"\n'
        f'[hosts.power]\nkind = "command"\non = "ipmitool -H \'{{address}}\' on"\noff = "true"\n'
    )
    with pytest.raises(UserError, match=rf"hosts\.0\.{key}: .*\(got {re.escape(repr(value))}\)"):
        load_config(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "address", ["192.0.2.10", "2001:db8::7", "fe80::1%eth0", "ws1", "ws-1.lab.example.org."]
)
def test_ip_addresses_and_host_names_are_accepted(address: str) -> None:
    assert HostConfig(name="ws1", kind="ssh", address=address).address == address
    with pytest.raises(ValidationError, match="neither an IP address nor a host name"):
        HostConfig(name="ws1", kind="ssh", address=f"{address}\n")


def test_a_failing_power_command_is_an_infra_error_with_its_output(tmp_path: Path) -> None:
    host = command_host(tmp_path, on="sh -c 'echo PDU says no >&2; exit 4'", off="true")
    with pytest.raises(InfraError, match="power on of laptop failed \\(exit 4\\)") as failed:
        get_host(farm_with(host, tmp_path), "laptop").power.on()
    assert "PDU says no" in str(failed.value)


def test_a_missing_power_program_is_an_infra_error_naming_it(tmp_path: Path) -> None:
    host = command_host(tmp_path, on="no-such-pdu-tool on {address}", off="true")
    with pytest.raises(InfraError, match="power on of laptop: cannot run no-such-pdu-tool"):
        get_host(farm_with(host, tmp_path), "laptop").power.on()


def test_a_hanging_power_command_times_out(tmp_path: Path) -> None:
    host = command_host(tmp_path, on="sleep 30", off="true", timeout=0.5)
    with pytest.raises(InfraError, match=r"did not finish within 0\.5s"):
        get_host(farm_with(host, tmp_path), "laptop").power.on()


def test_a_template_with_unbalanced_quotes_is_refused_when_the_config_is_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "farm.toml"
    path.write_text(
        '[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "pc.lab"\n'
        '[hosts.power]\nkind = "command"\non = "ipmitool -H \'{address} on"\noff = "true"\n'
    )
    with pytest.raises(UserError, match="cannot split power command"):
        load_config(path)


def test_unknown_placeholders_are_rejected_when_the_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "farm.toml"
    path.write_text(
        '[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "pc.lab"\n'
        '[hosts.power]\nkind = "command"\non = "ipmitool -H {bmc} on"\noff = "true"\n'
    )
    with pytest.raises(UserError) as bad:
        load_config(path)
    assert "unknown placeholder {bmc}" in str(bad.value)
    assert "{name}, {address}, {port}, {user}" in str(bad.value)


def test_a_command_plugin_needs_on_and_off(tmp_path: Path) -> None:
    path = tmp_path / "farm.toml"
    path.write_text(
        '[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "pc.lab"\n'
        '[hosts.power]\nkind = "command"\n'
    )
    with pytest.raises(UserError, match="needs both 'on' and 'off'"):
        load_config(path)


def test_manual_power_that_nobody_answers_times_out(tmp_path: Path) -> None:
    host = HostConfig(
        name="laptop", kind="ssh", address="pc.lab", power=PowerConfig(kind="manual", timeout=0.1)
    )
    with pytest.raises(InfraError, match=r"nobody switched it off and on within 0\.1s"):
        get_host(farm_with(host, tmp_path), "laptop").power.cycle()


def test_no_power_control_is_a_configuration_error(tmp_path: Path) -> None:
    host = HostConfig(name="laptop", kind="ssh", address="pc.lab")
    with pytest.raises(UserError, match="has no power control") as refused:
        get_host(farm_with(host, tmp_path), "laptop").power.off()
    assert refused.value.hint and 'kind = "command"' in refused.value.hint
