# SPDX-License-Identifier: Apache-2.0
"""compose.yaml and the systemd units: docker does not run here, so the compose file is
checked as data; the units are checked by systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, REPO

COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
FARM_SERVICES = {
    "farm-api": "api",
    "farm-beat": "beat",
    "farm-worker": "worker",
    "farm-exporter": "exporter",
}
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def test_the_stack_has_every_service() -> None:
    expected = {"net", "redis", "postgres", "prometheus", "alertmanager", "grafana", *FARM_SERVICES}
    assert set(SERVICES) == expected


def test_every_service_has_an_image_and_farm_services_run_their_command() -> None:
    for name, service in SERVICES.items():
        assert re.match(r"^[\w./-]+:[\w.-]+$", service["image"]), name
    for name, command in FARM_SERVICES.items():
        assert SERVICES[name]["image"] == "farm:latest"
        assert SERVICES[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert SERVICES[name]["command"][0] == command
    assert (DEPLOY / SERVICES["farm-api"]["build"]["context"]).resolve() == REPO


def test_published_ports_bind_the_hosts_loopback_only() -> None:
    published = [
        (name, port) for name, service in SERVICES.items() for port in service.get("ports", [])
    ]
    assert published, "Grafana, Prometheus, Alertmanager and the API are reachable locally"
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert {p.split(":")[1] for _, p in published} == {"3000", "9090", "9093", "9479"}


def test_services_share_one_network_namespace_so_the_config_files_are_the_same() -> None:
    for name, service in SERVICES.items():
        if name != "net":
            assert service["network_mode"] == "service:net", name
    prometheus = SERVICES["prometheus"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "./rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    alertmanager = SERVICES["alertmanager"]
    assert "./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]
    assert "./secrets/api-token:/etc/prometheus/farm-api-token:ro" in alertmanager["volumes"]


def test_redis_and_postgres_listen_on_loopback_inside_the_namespace() -> None:
    assert SERVICES["redis"]["command"][1:3] == ["--bind", "127.0.0.1"]
    assert "listen_addresses=127.0.0.1" in SERVICES["postgres"]["command"]


def test_farm_services_share_the_database_broker_and_config() -> None:
    for name in FARM_SERVICES:
        env = SERVICES[name]["environment"]
        assert env["FARM_DATABASE_URL"].startswith(
            "postgresql+psycopg://farm:${POSTGRES_PASSWORD:?"
        )
        assert env["FARM_DATABASE_URL"].endswith("@127.0.0.1:5432/farm")
        assert env["FARM_BROKER_URL"] == "redis://127.0.0.1:6379/0"
        assert env["FARM_CONFIG"] == "/etc/farm/farm.toml"
    assert SERVICES["farm-api"]["environment"]["FARM_API_TOKEN"].startswith("${FARM_API_TOKEN:?")
    assert SERVICES["grafana"]["environment"]["FARM_API_TOKEN"].startswith("${FARM_API_TOKEN:?")


def test_secrets_come_from_the_env_file_and_every_one_is_listed_in_the_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert required == example == {"POSTGRES_PASSWORD", "FARM_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
    assert (DEPLOY / ".gitignore").read_text().splitlines()[0] == ".env"


def test_the_farm_image_installs_the_postgres_driver() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "'/opt/farm[postgres]'" in dockerfile
    assert "postgres = [" in (REPO / "pyproject.toml").read_text()


def test_there_is_a_unit_for_every_farm_service() -> None:
    assert [u.name for u in UNITS] == [
        "farm-api.service",
        "farm-beat.service",
        "farm-exporter.service",
        "farm-netconsole.service",
        "farm-worker@.service",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """systemd-analyze verify, with ExecStart pointing at this checkout's farm."""
    farm = Path(sys.executable).parent / "farm"
    paths = []
    for unit in UNITS:
        name = unit.name.replace("@.", "@laptop.")
        text = unit.read_text().replace("/opt/farm/.venv/bin/farm", str(farm))
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for unit in UNITS:
        text = unit.read_text()
        assert "User=farm" in text and "NoNewPrivileges=yes" in text, unit.name
        assert "ExecStart=/opt/farm/.venv/bin/farm " in text, unit.name


def test_the_image_build_leaves_secrets_and_the_local_venv_out() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert {".venv", ".git", "deploy/.env", "deploy/secrets", "deploy/farm"} <= set(ignored)
