# SPDX-License-Identifier: Apache-2.0
"""Workers register the hosts they serve and beat; `farm status` shows them."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from farm.config import FarmConfig, load_config
from farm.scheduler.api import queue_run
from farm.scheduler.status import farm_status
from farm.scheduler.workers import serving, statuses
from farm.services import LocalServices
from farm.store import Store
from farm.store.base import utcnow
from farm.store.runs import RunKind
from farm.store.workers import Worker


def test_a_serving_worker_is_listed_with_its_hosts_and_a_fresh_heartbeat(
    config: FarmConfig, store: Store
) -> None:
    with serving(store, "bench@ws1", ["laptop", "workstation"], every=0.1):
        time.sleep(0.5)
        [worker] = statuses(store, every=0.1)
        assert (worker.name, worker.hosts, worker.alive) == (
            "bench@ws1",
            ["laptop", "workstation"],
            True,
        )
        assert worker.heartbeat_seconds_ago < 0.5  # it beat while the body ran

    assert farm_status(config, store, include_recent=False)["workers"] == [
        {
            "name": "bench@ws1",
            "hosts": ["laptop", "workstation"],
            "heartbeat_seconds_ago": pytest.approx(0.0, abs=10),
            "alive": True,
        }
    ]


def test_a_worker_that_stopped_beating_is_silent_and_a_restart_re_registers_it(
    store: Store,
) -> None:
    with serving(store, "w@laptop-box", ["laptop"], every=10):
        pass
    with store.session() as session:
        session.execute(update(Worker).values(heartbeat_at=utcnow().replace(year=2025)))
    [silent] = statuses(store, every=10)
    assert not silent.alive and silent.heartbeat_seconds_ago > 30

    with serving(store, "w@laptop-box", ["workstation"], every=10):
        [back] = statuses(store, every=10)
    assert (back.hosts, back.alive) == (["workstation"], True)


def test_a_run_whose_host_lost_every_worker_is_out_of_contact_until_one_is_back(
    config: FarmConfig, store: Store
) -> None:
    run_ids = [
        queue_run(config, store, kind=RunKind.HEALTH, host=host, commit="running",
                  load="thp-split", soak_seconds=60, send=False)
        for host in ("laptop", "workstation")
    ]  # fmt: skip
    with (
        serving(store, "a@box1", ["laptop"], every=10),
        serving(store, "b@box2", ["workstation"], every=10),
    ):
        pass
    with store.session() as session:  # b@box2 has been silent for a minute
        stale = utcnow() - dt.timedelta(minutes=1)
        session.execute(update(Worker).where(Worker.name == "b@box2").values(heartbeat_at=stale))

    data = farm_status(config, store, include_recent=False)

    assert {h["name"]: h["workers"] for h in data["hosts"]} == {
        "laptop": ["a@box1"],
        "workstation": [],
    }
    assert [(r["id"], r["lost_contact"]) for r in data["runs"]] == [
        (run_ids[0], False),
        (run_ids[1], True),
    ]
    with serving(store, "b@box2", ["workstation"], every=10):  # restarted
        data = farm_status(config, store, include_recent=False)
    assert [r["lost_contact"] for r in data["runs"]] == [False, False]


def test_a_host_no_worker_ever_served_is_not_out_of_contact(
    config: FarmConfig, store: Store
) -> None:
    queue_run(config, store, kind=RunKind.HEALTH, host="laptop", commit="running",
              load="thp-split", soak_seconds=60, send=False)  # fmt: skip

    data = farm_status(config, store, include_recent=False)

    assert [h["workers"] for h in data["hosts"]] == [[], []]
    assert [r["lost_contact"] for r in data["runs"]] == [False]  # queued, waiting for one


@pytest.mark.slow  # a real `farm worker`, killed
def test_farm_status_shows_a_running_worker_and_then_its_silence_once_killed(
    farm_toml: Path, tmp_path: Path
) -> None:
    farm_toml.write_text(farm_toml.read_text() + "[scheduler]\nheartbeat_seconds = 0.5\n")
    config = load_config(farm_toml)

    def workers() -> list[dict[str, object]]:
        result = subprocess.run(
            [sys.executable, "-m", "farm", "status", "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "FARM_CONFIG": str(farm_toml)},
            timeout=120,
            check=True,
        )
        listed: list[dict[str, object]] = json.loads(result.stdout)["workers"]
        return listed

    with LocalServices(farm_toml, tmp_path / "logs") as local:
        local.start_worker("w1", hosts=["laptop"])
        deadline = time.monotonic() + 60
        while not workers() and time.monotonic() < deadline:
            time.sleep(0.5)
        [worker] = workers()
        assert worker["hosts"] == ["laptop"]
        assert str(worker["name"]).startswith("w1@")
        assert worker["alive"] is True

        os.killpg(local.procs["w1"].pid, signal.SIGKILL)
        time.sleep(4 * config.scheduler.heartbeat_seconds + 1)
        [killed] = workers()
        assert killed["alive"] is False
        assert float(str(killed["heartbeat_seconds_ago"])) > 3 * config.scheduler.heartbeat_seconds
