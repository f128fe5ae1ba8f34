# SPDX-License-Identifier: Apache-2.0
"""Join tokens: the controller writes one private file; a worker on another machine
serves the farm with it (the whole story over a network: tests/scheduler/test_netns.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from farmcli import run

from farm.config import load_config
from farm.errors import UserError
from farm.scheduler.join import joined, read_token, token_for

DB_PASSWORD = "db-s3cret-Pw"
BROKER_PASSWORD = "broker-s3cret-Pw"
DATABASE = f"postgresql+psycopg://farm:{DB_PASSWORD}@127.0.0.1:5432/farm"
BROKER = f"redis://:{BROKER_PASSWORD}@localhost:6379/0"


@pytest.fixture
def controller(farm_toml: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A controller whose PostgreSQL and Redis listen on loopback (and its network)."""
    monkeypatch.setenv("FARM_DATABASE_URL", DATABASE)
    monkeypatch.setenv("FARM_BROKER_URL", BROKER)
    return farm_toml


def test_a_join_token_carries_the_controllers_services_at_its_network_address(
    controller: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "join-token"

    code, out, err = run(
        capsys, "join-token", "--address", "10.0.0.1", "--output", str(token_file), "--json"
    )

    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "token_file": str(token_file),
        "broker_url": "redis://:***@10.0.0.1:6379/0",
        "database_url": "postgresql+psycopg://farm:***@10.0.0.1:5432/farm",
    }
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = read_token(token_file)
    assert token.broker_url == f"redis://:{BROKER_PASSWORD}@10.0.0.1:6379/0"
    assert token.database_url == f"postgresql+psycopg://farm:{DB_PASSWORD}@10.0.0.1:5432/farm"
    # The worker keeps its own hosts and timings, and serves the controller's farm.
    worker = joined(load_config(controller), token)
    assert (worker.broker_url, worker.db_url) == (token.broker_url, token.database_url)


def test_the_token_text_output_names_the_next_command_and_no_password(
    controller: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "join-token"
    token_file.write_text("old\n")
    token_file.chmod(0o644)

    code, out, _ = run(capsys, "join-token", "--address", "10.0.0.1", "-o", str(token_file))

    assert code == 0
    assert "farm worker --join join-token --hosts" in out
    assert DB_PASSWORD not in out and BROKER_PASSWORD not in out
    assert token_file.stat().st_mode & 0o777 == 0o600  # an existing file is made private


def test_services_on_an_address_other_machines_reach_need_no_address(
    controller: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARM_BROKER_URL", "redis://:pw@redis.lab.example:6379/0")
    monkeypatch.setenv("FARM_DATABASE_URL", "postgresql+psycopg://farm:pw@[fd00::1]:5432/farm")

    token = token_for(load_config(controller), None)

    assert token.broker_url == "redis://:pw@redis.lab.example:6379/0"
    assert token.database_url == "postgresql+psycopg://farm:pw@[fd00::1]:5432/farm"


def test_an_ipv6_controller_address_is_bracketed_in_the_urls(controller: Path) -> None:

    token = token_for(load_config(controller), "fd00::1")

    assert token.broker_url == f"redis://:{BROKER_PASSWORD}@[fd00::1]:6379/0"
    assert token.database_url == f"postgresql+psycopg://farm:{DB_PASSWORD}@[fd00::1]:5432/farm"


def test_a_loopback_service_without_an_address_is_refused_with_the_option_to_use(
    controller: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "join-token", "-o", str(tmp_path / "t"))

    assert code == 1
    assert "is on loopback: another machine cannot reach it" in err
    assert "--address ADDRESS" in err
    assert BROKER_PASSWORD not in err
    assert not (tmp_path / "t").exists()


def test_a_farm_on_sqlite_cannot_have_workers_on_other_machines(
    farm_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "join-token", "--address", "10.0.0.1", "-o", str(tmp_path / "t"))

    assert code == 1
    assert "this farm uses SQLite" in err


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        ("farm-join-1:e30=\n", 0o640, "readable by others (mode 640)"),
        (f"{DATABASE}\n", 0o600, "is not a farm join token"),
        ("farm-join-1:%%%\n", 0o600, "is not a farm join token"),
    ],
)
def test_a_token_readable_by_others_or_broken_is_refused_without_showing_it(
    tmp_path: Path, content: str, mode: int, message: str
) -> None:
    path = tmp_path / "join-token"
    path.write_text(content)
    path.chmod(mode)

    with pytest.raises(UserError) as caught:
        read_token(path)

    assert message in caught.value.message
    assert DB_PASSWORD not in str(caught.value) + str(caught.value.hint)


def test_a_worker_refuses_a_token_it_cannot_use_before_it_starts(
    farm_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t").write_text("not a token\n")
    (tmp_path / "t").chmod(0o600)

    code, _, err = run(capsys, "worker", "--join", str(tmp_path / "t"), "--hosts", "laptop")

    assert code == 1
    assert "is not a farm join token" in err
    assert "farm join-token --output FILE" in err
