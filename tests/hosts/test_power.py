"""Power plugins: the command plugin runs real shell commands on the controller."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.config import FarmConfig, HostConfig, PowerConfig, load_config
from farm.errors import InfraError, UserError
from farm.hosts import get_host


def command_host(tmp_path: Path, **power: str | float) -> HostConfig:
    return HostConfig(
        name="laptop",
        kind="ssh",
        # Inventory values are data: an address or user like these must stay words.
        address="$(touch pwned)",
        user="o'brien; touch pwned",
        power=PowerConfig(kind="command", **power),
    )


def farm_with(host: HostConfig, tmp_path: Path) -> FarmConfig:
    return FarmConfig(data_dir=tmp_path / "data", hosts=[host])


def test_templates_get_the_host_values_shell_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log"
    host = command_host(
        tmp_path,
        on=f"printf 'on %s|%s|%s\\n' {{name}} {{address}} {{user}} >> {log}",
        off=f"printf 'off %s\\n' {{name}} >> {log}",
    )
    power = get_host(farm_with(host, tmp_path), "laptop").power
    power.on()
    power.cycle()  # no cycle template: off, then on
    assert log.read_text().splitlines() == [
        "on laptop|$(touch pwned)|o'brien; touch pwned",
        "off laptop",
        "on laptop|$(touch pwned)|o'brien; touch pwned",
    ]
    assert not (tmp_path / "pwned").exists()
    assert power.state() == "unknown"


def test_a_failing_power_command_is_an_infra_error_with_its_output(tmp_path: Path) -> None:
    host = command_host(tmp_path, on="echo 'PDU says no' >&2; exit 4", off="true")
    with pytest.raises(InfraError, match="power on of laptop failed \\(exit 4\\)") as failed:
        get_host(farm_with(host, tmp_path), "laptop").power.on()
    assert "PDU says no" in str(failed.value)


def test_a_hanging_power_command_times_out(tmp_path: Path) -> None:
    host = command_host(tmp_path, on="sleep 30", off="true", timeout=0.5)
    with pytest.raises(InfraError, match=r"did not finish within 0\.5s"):
        get_host(farm_with(host, tmp_path), "laptop").power.on()


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
