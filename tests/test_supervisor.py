# SPDX-License-Identifier: Apache-2.0
"""`farm up`'s supervisor: what it starts for a configuration, how it restarts what
dies (real processes, a clock the test sets), and what `farm down`, `farm up --status`
and `farm submit` say when no farm is up. The whole farm, up to a QEMU soak through a
killed worker, is tests/scheduler/test_farm_up.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from farmcli import run

from farm.config import load_config
from farm.scheduler.app import why_not_running
from farm.services import LocalServices
from farm.supervisor import Service, Supervisor, services_for


def names(services: list[Service]) -> list[str]:
    return [s.name for s in services]


def test_a_plain_config_gets_a_private_redis_a_worker_for_every_host_beat_and_the_exporter(
    farm_toml: Path,
) -> None:
    services = services_for(load_config(farm_toml), api=False)
    assert names(services) == ["redis", "worker", "beat", "exporter"]
    worker = services[1].args
    assert worker == ("worker", "--name", "worker", "--hosts", "laptop,workstation")


def test_a_configured_broker_netconsole_host_and_api_token_change_what_runs(
    farm_toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    farm_toml.write_text(
        farm_toml.read_text()
        + 'broker_url = "redis://broker.example.org:6379/0"\n'
        + '[[hosts]]\nname = "t14"\nkind = "ssh"\naddress = "192.0.2.20"\n'
        + '[hosts.console]\nkind = "netconsole"\n'
    )
    services = services_for(load_config(farm_toml), api=True)
    assert names(services) == ["worker", "beat", "exporter", "netconsole", "api"]

    monkeypatch.setenv("FARM_BROKER_URL", "redis://elsewhere:6379/0")
    farm_toml.write_text(farm_toml.read_text().replace("broker_url", "# broker_url"))
    assert "redis" not in names(services_for(load_config(farm_toml), api=False))


def wait_exit(stack: LocalServices, name: str) -> None:
    deadline = time.monotonic() + 30
    while stack.exited(name) is None:
        assert time.monotonic() < deadline, stack.log(name)
        time.sleep(0.05)


def test_a_crashing_service_is_started_again_after_a_back_off_that_doubles(
    tmp_path: Path,
) -> None:
    """`farm --version` ends at once: a service that keeps ending is a crash loop."""
    crashing = Service("crasher", ("--version",))
    said: list[str] = []
    with LocalServices(None, tmp_path / "logs", broker="redis://127.0.0.1:1/0") as stack:
        supervisor = Supervisor(stack, [crashing], said.append)
        supervisor.start_all(0.0)
        for now in (0.5, 10.0, 20.0, 30.0):  # alive 0.5 s, then 10 s after each start
            wait_exit(stack, "crasher")
            assert supervisor.tend(now)  # noticed: the start is scheduled
            [state] = [c.state for c in supervisor.children]
            delay = state.next_start_at - now  # type: ignore[operator]
            assert not supervisor.tend(now + delay - 0.01)  # not before its time
            assert supervisor.tend(now + delay)  # started again
        wait_exit(stack, "crasher")
    assert [c.state.restarts for c in supervisor.children] == [4]
    delays = [line.rpartition("starting it in ")[2] for line in said if "exited" in line]
    assert delays == ["1 s", "2 s", "4 s", "8 s"]
    assert "crasher exited with 0 after 0 s; starting it in 1 s" in said
    assert stack.log("crasher").count("farm, version") == 5  # its log has every start


def test_a_service_that_ran_a_minute_before_dying_starts_again_after_one_second(
    tmp_path: Path,
) -> None:
    crashing = Service("crasher", ("--version",))
    said: list[str] = []
    with LocalServices(None, tmp_path / "logs", broker="redis://127.0.0.1:1/0") as stack:
        supervisor = Supervisor(stack, [crashing], said.append)
        supervisor.start_all(0.0)
        wait_exit(stack, "crasher")
        supervisor.tend(0.5)
        supervisor.tend(1.5)
        wait_exit(stack, "crasher")
        supervisor.tend(100.0)  # this one "lived" 98.5 s: not a crash loop
    assert said[-1] == "crasher exited with 0 after 98 s; starting it in 1 s"


def test_up_status_and_down_when_nothing_is_up_say_so(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = farm_toml.parent / "data"
    assert run(capsys, "up", "--status") == (
        3, f"farm is not up for {data}: start it with `farm up`\n", ""
    )  # fmt: skip
    assert run(capsys, "up", "--status", "--json") == (3, '{\n  "up": false\n}\n', "")
    assert run(capsys, "down") == (0, f"farm is not up for {data}: nothing to stop\n", "")


def test_no_reachable_broker_means_no_farm(farm_toml: Path) -> None:
    config = load_config(farm_toml).model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    problem = why_not_running(config, timeout=1.0)
    assert problem is not None
    assert problem.startswith("the broker redis://127.0.0.1:1/0 does not answer (")


def test_a_broker_without_a_worker_is_no_farm_either(farm_toml: Path, tmp_path: Path) -> None:
    with LocalServices(farm_toml, tmp_path / "logs") as stack:
        config = load_config(farm_toml).model_copy(update={"broker_url": stack.broker_url})
        problem = why_not_running(config, timeout=1.0)
    assert problem == f"no worker answers on redis://:***@127.0.0.1:{stack.port}/0"


def test_a_bad_api_token_file_stops_farm_up_before_anything_starts(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = farm_toml.parent / "data" / "api-token"
    token.parent.mkdir()
    token.write_text("x" * 40)
    os.chmod(token, 0o644)
    code, out, err = run(capsys, "up", "--json")
    assert code == 1 and out == ""
    assert json.loads(err) == {
        "error": f"the API token file {token} is readable by others (mode 644)",
        "hint": f"chmod 600 {token}",
        "exit": 1,
    }
    assert not (farm_toml.parent / "data" / "up").exists()
