# SPDX-License-Identifier: Apache-2.0
"""farm status / logs / cancel / worker: what an operator types, on a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from farm.config import FarmConfig
from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.scheduler.api import queue_run
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind
from farm.store.samples import ConsoleLine


def farm(farm_toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_CONFIG": str(farm_toml)}
    return subprocess.run(
        [sys.executable, "-m", "farm", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def queued(config: FarmConfig, store: Store, host: str = "laptop") -> int:
    return queue_run(
        config,
        store,
        kind=RunKind.PATCHED,
        host=host,
        commit="ab" * 20,
        load="thp-split",
        soak_seconds=3600,
        upto=3,
        send=False,
    )


def test_status_lists_hosts_and_active_runs_as_json(
    farm_toml: Path, config: FarmConfig, store: Store
) -> None:
    first, second = queued(config, store), queued(config, store, "workstation")

    result = farm(farm_toml, "status", "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [h["name"] for h in data["hosts"]] == ["laptop", "workstation"]
    assert all(h["up"] is False and h["last_contact_seconds_ago"] is None for h in data["hosts"])
    assert [(r["id"], r["host"], r["state"], r["upto"]) for r in data["runs"]] == [
        (first, "laptop", "queued", 3),
        (second, "workstation", "queued", 3),
    ]
    table = farm(farm_toml, "status")
    assert "thp-split" in table.stdout and "queued" in table.stdout


def test_cancel_stops_a_queued_run_at_once(
    farm_toml: Path, config: FarmConfig, store: Store
) -> None:
    run_id = queued(config, store)

    result = farm(farm_toml, "cancel", str(run_id), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "cancelled"
    missing = farm(farm_toml, "cancel", "999")
    assert (
        missing.returncode == 1
        and "no run 999" in missing.stderr
        and "farm status" in missing.stderr
    )


def test_logs_shows_the_console_the_crash_and_the_verdict(
    farm_toml: Path, config: FarmConfig, store: Store
) -> None:
    run_id = queued(config, store)
    with store.session() as session:
        session.add_all(
            ConsoleLine(run_id=run_id, host="laptop", ts=1.0, line=f"[    {i}.0] line {i}")
            for i in range(5)
        )
        session.add(
            Crash(
                run_id=run_id,
                host="laptop",
                title="BUG: corrupted list in deferred_split_scan",
                kind="BUG",
                signature="x",
                report="...",
            )
        )
        run = session.get(Run, run_id)
        assert run is not None
        title = "BUG: corrupted list in deferred_split_scan"
        run.verdict = Verdict.FAIL
        run.ending = RunEnding(findings=[Finding(cause=Cause.CRASH, text=f"crash: {title}")])

    result = farm(farm_toml, "logs", str(run_id), "--lines", "3")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[    2.0] line 2",
        "[    3.0] line 3",
        "[    4.0] line 4",
    ]
    assert "# crash: BUG: corrupted list in deferred_split_scan" in result.stderr
    assert "# verdict FAIL: crash: BUG: corrupted list" in result.stderr


def test_logs_defuse_terminal_escapes_but_store_them_as_sent(
    farm_toml: Path, config: FarmConfig, store: Store
) -> None:
    run_id = queued(config, store)
    hostile = "\x1b]0;owned\x07\x1b[2J\r"  # retitle the terminal, clear it, go back
    with store.session() as session:
        session.add(ConsoleLine(run_id=run_id, host="laptop", ts=1.0, line=f"[ 1.0]\t{hostile}"))
        session.add(
            Crash(
                run_id=run_id,
                host="laptop",
                title=f"BUG: {hostile}",
                kind="BUG",
                signature="x",
                report="",
            )
        )

    result = farm(farm_toml, "logs", str(run_id))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "[ 1.0]\t\\x1b]0;owned\\x07\\x1b[2J\\x0d\n"
    assert "# crash: BUG: \\x1b]0;owned\\x07\\x1b[2J\\x0d\n" in result.stderr
    with store.session() as session:
        assert session.scalars(select(ConsoleLine.line)).one() == f"[ 1.0]\t{hostile}"


def test_a_worker_for_an_unknown_host_names_the_known_ones(farm_toml: Path) -> None:
    result = farm(farm_toml, "worker", "--hosts", "laptop,nope")
    assert result.returncode == 1
    assert "no host named 'nope'" in result.stderr and "laptop, workstation" in result.stderr
