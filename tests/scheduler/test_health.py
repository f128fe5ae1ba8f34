# SPDX-License-Identifier: Apache-2.0
"""Host health: the states, their history, the scheduler's gate, the CLI and /metrics.

The rules are exercised on a real SQLite store with the runs the state machine would
have finished; tests/scheduler/test_health_gate.py runs them through real workers.
"""

from __future__ import annotations

import getpass
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dbfixtures import database_toml_line

from farm.cli import cli
from farm.config import FarmConfig, load_config
from farm.ending import Cause, PowerCycle, RunEnding, Verdict, only
from farm.errors import UserError
from farm.hosts import get_host
from farm.metrics.exporter import Exposition
from farm.scheduler import health as host_health
from farm.scheduler.health import after_run, gate, set_health, state_of
from farm.store import Store
from farm.store.hosts import Health, HostAlert
from farm.store.runs import Run, RunKind, RunState

LOADS = Path(__file__).parents[1] / "soak" / "loads"


@pytest.fixture
def farm_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """A bare-metal laptop with manual power and short health checks, and a QEMU host."""
    for name in ("FARM_CONFIG", "FARM_DATABASE_URL", "FARM_BROKER_URL", "FARM_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "farm.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\nloads_dir = "{LOADS}"\n'
        f"{database_toml_line(request)}"
        '[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "127.0.0.1"\n'
        '[hosts.power]\nkind = "manual"\ntimeout = 60\n'
        '[hosts.health]\nload = "idle-loop"\nseconds = 30\n'
        '[[hosts]]\nname = "vm"\nkind = "qemu"\n'
    )
    monkeypatch.setenv("FARM_CONFIG", str(path))
    return path


@pytest.fixture
def config(farm_toml: Path) -> FarmConfig:
    return load_config(farm_toml)


def finished(
    store: Store,
    kind: RunKind,
    verdict: Verdict,
    ending: RunEnding | None = None,
    host: str = "laptop",
    **fields: object,
) -> Run:
    with store.session() as session:
        run = Run(
            kind=kind, host=host, commit=str(fields.pop("commit", "c0ffee")), load="idle-loop",
            soak_seconds=60, state=RunState.DONE, verdict=verdict, ending=ending or RunEnding(),
            **fields,
        )  # fmt: skip
        session.add(run)
    return run


def end(store: Store, config: FarmConfig, run: Run) -> int | None:
    with store.session() as session:
        fresh = session.get(Run, run.id)
        assert fresh is not None
        return after_run(session, config, fresh)


def test_a_host_never_checked_is_unknown_and_gets_work(store: Store) -> None:
    with store.session() as session:
        assert state_of(session, "laptop") == Health.UNKNOWN
        assert gate(session, "laptop", RunKind.PATCHED) is None


def test_an_infra_run_queues_a_check_of_the_last_good_baseline_before_other_work(
    store: Store, config: FarmConfig
) -> None:
    finished(store, RunKind.BASELINE, Verdict.PASS, commit="base1", details={"tree": "linux"})
    finished(store, RunKind.BASELINE, Verdict.FAIL, commit="base2", details={"tree": "linux"})
    broken = finished(
        store, RunKind.PATCHED, Verdict.INFRA, only(Cause.INFRA, "infrastructure: ssh refused")
    )

    check = end(store, config, broken)

    assert check is not None
    with store.session() as session:
        run = session.get(Run, check)
        assert run is not None
        assert (run.kind, run.state, run.commit, run.details) == (
            RunKind.HEALTH, RunState.QUEUED, "base1", {"tree": "linux"},
        )  # fmt: skip
        assert (run.load, run.soak_seconds) == ("idle-loop", 30)
        assert state_of(session, "laptop") == Health.UNKNOWN
        [change] = host_health.history(session, "laptop")
        assert change.reason == (
            f"run {broken.id} ended INFRA: infrastructure: ssh refused; health check run {check}"
        )
        assert (change.by, change.run_id) == ("farm", broken.id)
        assert gate(session, "laptop", RunKind.PATCHED) == (
            f"host laptop waits for its health check (run {check})"
        )
        assert gate(session, "laptop", RunKind.HEALTH) is None
    again = finished(
        store, RunKind.PATCHED, Verdict.INFRA, only(Cause.INFRA, "infrastructure: again")
    )
    assert end(store, config, again) == check  # one check at a time


def test_without_a_good_baseline_the_check_soaks_the_running_kernel(
    store: Store, config: FarmConfig
) -> None:
    hang = only(Cause.HANG, "hang: laptop did not answer for 93s")
    hung = finished(store, RunKind.PATCHED, Verdict.FAIL, hang)
    check = end(store, config, hung)
    with store.session() as session:
        run = session.get(Run, check)
        assert run is not None and run.details == {"kernel": "running"}


def test_a_crash_that_needed_no_power_cycle_leaves_the_host_alone(
    store: Store, config: FarmConfig
) -> None:
    crashed = finished(
        store, RunKind.PATCHED, Verdict.FAIL, only(Cause.CRASH, "crash: BUG: bad page")
    )
    assert end(store, config, crashed) is None
    panic = only(Cause.CRASH, "crash: Kernel panic")
    panic.power_cycle = PowerCycle(done=True, text="laptop power-cycled via command")
    cycled = finished(store, RunKind.PATCHED, Verdict.FAIL, panic)
    assert end(store, config, cycled)


def test_qemu_hosts_have_no_checks_unless_asked(store: Store, config: FarmConfig) -> None:
    assert config.host("vm").health.checks is False
    broken = finished(store, RunKind.PATCHED, Verdict.INFRA, only(Cause.INFRA, "x"), host="vm")
    assert end(store, config, broken) is None


def test_a_passing_check_makes_the_host_good(store: Store, config: FarmConfig) -> None:
    check = finished(store, RunKind.HEALTH, Verdict.PASS)
    end(store, config, check)
    with store.session() as session:
        assert state_of(session, "laptop") == Health.GOOD
        assert host_health.open_alerts(session) == []


def test_a_failing_check_makes_the_host_bad_with_an_alert_and_no_work(
    store: Store, config: FarmConfig
) -> None:
    check = finished(
        store,
        RunKind.HEALTH,
        Verdict.INFRA,
        only(Cause.LOAD, "load idle-loop exited with status 7"),
    )
    end(store, config, check)
    with store.session() as session:
        assert state_of(session, "laptop") == Health.BAD
        [alert] = host_health.open_alerts(session)
        assert (alert.host, alert.kind, alert.run_id) == ("laptop", "health-check-failed", check.id)
        assert alert.message == (
            f"health check run {check.id} failed: load idle-loop exited with status 7"
        )
        assert gate(session, "laptop", RunKind.BISECT) == "host laptop is BAD"
        assert gate(session, "laptop", RunKind.HEALTH) is None  # a human may check it again
    later = finished(store, RunKind.PATCHED, Verdict.INFRA, only(Cause.INFRA, "x"))
    assert end(store, config, later) is None  # BAD stays BAD until a human acts


def test_maintenance_and_retirement_stop_all_work_and_outlast_runs(
    store: Store, config: FarmConfig
) -> None:
    for state in (Health.MAINTENANCE, Health.RETIRED):
        with store.session() as session:
            set_health(session, "laptop", state, reason="disk swap", by="alice")
            assert gate(session, "laptop", RunKind.HEALTH) == f"host laptop is {state}"
        check = finished(store, RunKind.HEALTH, Verdict.PASS)
        end(store, config, check)
        with store.session() as session:
            assert state_of(session, "laptop") == state


def farm(farm_toml: Path, *args: str) -> Result:
    """`farm hosts ARGS` in this process (the commands' own code; no interpreter start)."""
    return CliRunner().invoke(cli, ["hosts", *args], env={"FARM_CONFIG": str(farm_toml)})


def test_the_cli_takes_hosts_out_and_back_with_their_history(farm_toml: Path) -> None:
    done = farm(farm_toml, "maintenance", "vm", "on", "--reason", "new SSD", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {
        "name": "vm", "previous": "UNKNOWN", "health": "MAINTENANCE", "reason": "new SSD",
        "health_check_run": None, "alerts_acknowledged": 0,
    }  # fmt: skip
    status = CliRunner().invoke(cli, ["status", "--json"], env={"FARM_CONFIG": str(farm_toml)})
    assert [(h["name"], h["health"]) for h in json.loads(status.stdout)["hosts"]] == [
        ("laptop", "UNKNOWN"), ("vm", "MAINTENANCE"),
    ]  # fmt: skip
    listed = {row["name"]: row for row in json.loads(farm(farm_toml, "list", "--json").stdout)}
    assert (listed["vm"]["health"], listed["vm"]["health_reason"]) == ("MAINTENANCE", "new SSD")
    assert (listed["laptop"]["health"], listed["laptop"]["health_reason"]) == (
        "UNKNOWN", "never checked",
    )  # fmt: skip
    assert farm(farm_toml, "maintenance", "vm", "off").stdout == (
        "vm: MAINTENANCE -> UNKNOWN (maintenance off)\n"
    )
    assert farm(farm_toml, "retire", "vm", "--reason", "sold").exit_code == 0
    history = json.loads(farm(farm_toml, "history", "vm", "--json").stdout)
    assert [(h["health"], h["reason"]) for h in history] == [
        ("RETIRED", "sold"), ("UNKNOWN", "maintenance off"), ("MAINTENANCE", "new SSD"),
    ]  # fmt: skip
    assert {h["by"] for h in history} == {getpass.getuser()}
    unknown = farm(farm_toml, "maintenance", "nosuch", "on")
    assert isinstance(unknown.exception, UserError)
    assert "no host named 'nosuch'" in str(unknown.exception)


def test_manual_power_waits_for_power_done_and_alerts_until_then(
    farm_toml: Path, config: FarmConfig, store: Store
) -> None:
    nothing = farm(farm_toml, "power-done", "laptop")
    assert isinstance(nothing.exception, UserError)
    assert nothing.exception.message == "no power request is waiting for laptop"
    host = host_health.wire_alerts(get_host(config, "laptop"), store)
    cycled = threading.Thread(target=host.power.cycle)
    cycled.start()
    try:
        for _ in range(200):
            alerts = json.loads(farm(farm_toml, "alerts", "--json").stdout)
            if alerts:
                break
            time.sleep(0.05)
        [alert] = alerts
        assert alert["kind"] == "manual-power"
        assert alert["message"] == (
            "host laptop needs a human: switch it off and on by hand, "
            "then run `farm hosts power-done laptop`"
        )
        done = farm(farm_toml, "power-done", "laptop", "--json")
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout) == {"name": "laptop", "action": "off and on"}
    finally:
        cycled.join(timeout=30)
    assert not cycled.is_alive()  # cycle() returned: the human's answer was seen
    assert json.loads(farm(farm_toml, "alerts", "--json").stdout) == []
    with store.session() as session:
        [acked] = session.query(HostAlert).all()
        assert acked.acked_by and acked.acked_at is not None


def test_metrics_show_each_hosts_health(store: Store, config: FarmConfig) -> None:
    with store.session() as session:
        set_health(session, "laptop", Health.BAD, reason="check failed")
    body = Exposition(config, store).render().decode()
    assert 'farm_host_health{host="laptop",state="BAD"} 1.0' in body
    assert 'farm_host_health{host="laptop",state="GOOD"} 0.0' in body
    assert 'farm_host_health{host="vm",state="UNKNOWN"} 1.0' in body
