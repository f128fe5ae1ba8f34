# SPDX-License-Identifier: Apache-2.0
"""The run lifecycle driven step by step (no Celery) against a real sshd host.

The host is this machine behind a real OpenSSH server; the load really runs detached
and the samples are the real /proc. Each test reads like one story of a run.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from soakstack import SshHost, write_farm_toml
from sqlalchemy import select

from farm.config import FarmConfig, load_config
from farm.ending import Cause, PowerCycle, Verdict
from farm.errors import FarmBug
from farm.hosts import get_host
from farm.scheduler import lifecycle
from farm.scheduler.api import cancel_run, queue_run
from farm.scheduler.leases import bump_fence
from farm.soak import load as load_mod
from farm.store import Store
from farm.store.runs import Run, RunKind, RunState
from farm.store.samples import HostState, RunProgress, Sample, run_readings

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url() -> None:
    """One process steps one run here: the store behaves alike on both engines, and the
    concurrency is tested on PostgreSQL in test_reliability and test_concurrency.
    SQLite only, for CI time."""
    return None


def new_run(config: FarmConfig, store: Store, load: str = "idle-loop", seconds: float = 4) -> int:
    return queue_run(
        config,
        store,
        kind=RunKind.HEALTH,
        host="laptop",
        commit="running",
        load=load,
        soak_seconds=seconds,
        details={"kernel": "running"},
        send=False,
    )


def ctx_for(config: FarmConfig, store: Store) -> lifecycle.Ctx:
    """A context holding a fresh fence, as a worker that just took the lease."""
    return lifecycle.Ctx(config, store, get_host(config, "laptop"), bump_fence(store, "laptop"))


def drive(config: FarmConfig, store: Store, run_id: int, until: RunState | None = None) -> Run:
    """Step the run as the workers would, sleeping the delays the steps ask for."""
    ctx, tick = ctx_for(config, store), current_tick(store, run_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        result = lifecycle.advance(ctx, run_id, tick)
        run = get_run(store, run_id)
        if result is None or run.state == until:
            return run
        tick, delay = result
        time.sleep(delay)
    raise AssertionError(f"run {run_id} did not finish")


def get_run(store: Store, run_id: int) -> Run:
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def session_alive(sid: int) -> bool:
    """Whether any live (not zombie) process belongs to session ``sid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            return True
    return False


def current_tick(store: Store, run_id: int) -> int:
    with store.session() as session:
        progress = session.get(RunProgress, run_id)
        return progress.tick if progress else 0


def test_a_soak_of_the_running_kernel_passes_with_samples_and_one_load_start(
    soak_config: FarmConfig, soak_store: Store, ssh_host: SshHost
) -> None:
    run_id = new_run(soak_config, soak_store)

    run = drive(soak_config, soak_store, run_id)

    assert (run.state, run.verdict, run.reasons) == (RunState.DONE, Verdict.PASS, [])
    assert run.kernel_release == os.uname().release
    with soak_store.session() as session:
        readings = run_readings(session, run_id)
        assert session.get(HostState, "laptop").run_id is None  # the host is free again
    assert len(readings) >= 4
    assert [r.phase for r in readings][-1] == "quiesced"
    assert {"pgfault", "nr_free_pages"} <= set(readings[0].vmstat)
    assert readings[0].meminfo["MemTotal"] % 1024 == 0  # kB stored as bytes
    assert readings[0].boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    starts = (ssh_host.remote_dir / "starts.log").read_text().splitlines()
    assert [line.split()[0] for line in starts] == [f"run-{run_id}"]
    assert "nr_zspages" not in " ".join(run.ending.notes)  # the expectation was checked


def test_a_step_repeated_after_a_crash_finds_the_running_load(
    soak_config: FarmConfig, soak_store: Store, ssh_host: SshHost
) -> None:
    run_id = new_run(soak_config, soak_store, seconds=30)
    host = get_host(soak_config, "laptop")
    from farm.loads import get_load

    load = get_load(soak_config, "idle-loop")
    remote = str(ssh_host.remote_dir)
    with host.transport() as transport:
        first = load_mod.start(
            transport,
            load=load,
            run_id=run_id,
            seconds=30,
            remote_dir=remote,
            cache_dir=ssh_host.data_dir / "loads",
        )
        # The worker died before recording the start: the retried step starts it again.
        again = load_mod.start(
            transport,
            load=load,
            run_id=run_id,
            seconds=30,
            remote_dir=remote,
            cache_dir=ssh_host.data_dir / "loads",
        )
        assert load_mod.starts_log(transport, remote) == [
            line for line in load_mod.starts_log(transport, remote) if f"run-{run_id} " in line
        ]
        assert len(load_mod.starts_log(transport, remote)) == 1
        load_mod.stop(transport, run_id=run_id, remote_dir=remote)
    assert first.fresh and not again.fresh and again.pid == first.pid
    assert not session_alive(first.pid)  # the whole session of the load is gone


def test_a_duplicate_step_is_dropped_and_changes_nothing(
    soak_config: FarmConfig, soak_store: Store
) -> None:
    run_id = new_run(soak_config, soak_store)
    ctx = ctx_for(soak_config, soak_store)
    assert lifecycle.advance(ctx, run_id, 0) == (1, 0.0)  # queued -> booting

    assert lifecycle.advance(ctx, run_id, 0) is None  # the same message again
    assert get_run(soak_store, run_id).state == RunState.BOOTING
    assert current_tick(soak_store, run_id) == 1


def test_a_worker_whose_lease_was_taken_over_cannot_commit(
    soak_config: FarmConfig, soak_store: Store
) -> None:
    run_id = new_run(soak_config, soak_store)
    stale = ctx_for(soak_config, soak_store)
    bump_fence(soak_store, "laptop")  # another worker took the lease meanwhile

    with pytest.raises(lifecycle.LeaseLost):
        lifecycle.advance(stale, run_id, 0)
    assert get_run(soak_store, run_id).state == RunState.QUEUED
    assert current_tick(soak_store, run_id) == 0


def test_a_counter_that_does_not_return_to_zero_fails_with_its_name_and_value(
    soak_config: FarmConfig, soak_store: Store
) -> None:
    run_id = new_run(soak_config, soak_store, load="free-pages-zero", seconds=3)

    run = drive(soak_config, soak_store, run_id)

    assert run.verdict == Verdict.FAIL
    [reason] = run.reasons
    assert reason.startswith("counter nr_free_pages: ")
    assert reason.endswith("after quiesce, expected <= 0")
    [failure] = run.ending.of(Cause.COUNTER)
    assert failure.counter == "nr_free_pages" and (failure.value or 0) > 0


def test_a_load_that_exits_with_an_error_is_our_failure_not_the_kernels(
    soak_config: FarmConfig, soak_store: Store
) -> None:
    run_id = new_run(soak_config, soak_store, load="exits-early", seconds=20)

    run = drive(soak_config, soak_store, run_id)

    assert (run.verdict, run.reasons) == (Verdict.INFRA, ["load exits-early exited with status 7"])


def test_a_host_that_stops_answering_is_a_hang_and_is_power_cycled(
    tmp_path: Path, ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    power_log = tmp_path / "power.log"
    path = write_farm_toml(
        tmp_path / "farm.toml",
        ssh_host,
        host_extra=(
            # The frozen machine never comes back here: the aftermath's wait for it after
            # the power cycle (for pstore) gives up after boot_timeout, not 5 minutes.
            "boot_timeout = 10\n"
            # Power commands are argument lists: a shell only where one is asked for.
            f'[hosts.power]\nkind = "command"\non = "true"\noff = "true"\n'
            f'cycle = "sh -c \'echo cycled \\"$1\\" >> {power_log}\' power {{name}}"'
        ),
    )
    config = load_config(path)
    store = Store(config.db_url)
    run_id = new_run(config, store, seconds=60)
    drive(config, store, run_id, until=RunState.SOAKING)
    sshd_pid = int((ssh_host.data_dir.parent / "sshd" / "sshd.pid").read_text())
    os.kill(sshd_pid, signal.SIGSTOP)  # the machine freezes: connections time out
    try:
        run = drive(config, store, run_id)
    finally:
        os.kill(sshd_pid, signal.SIGCONT)
    limit = 3 * config.scheduler.sample_interval + config.scheduler.hang_grace

    assert run.verdict == Verdict.FAIL
    [reason] = run.reasons
    assert reason.startswith("hang: laptop did not answer for ")
    silent = float(reason.split("for ")[1].split("s ")[0])
    missed = int(reason.split("(")[1].split(" samples missed")[0])
    assert silent >= limit and 1 <= missed <= 3  # not before the limit, soon after it
    assert power_log.read_text() == "cycled laptop\n"
    assert run.ending.power_cycle == PowerCycle(done=True, text="laptop power-cycled via command")
    store.dispose()


def test_a_cancelled_run_stops_its_load_and_frees_the_host(
    soak_config: FarmConfig, soak_store: Store, ssh_host: SshHost
) -> None:
    run_id = new_run(soak_config, soak_store, seconds=60)
    drive(soak_config, soak_store, run_id, until=RunState.SOAKING)
    ctx = ctx_for(soak_config, soak_store)
    result = lifecycle.advance(ctx, run_id, current_tick(soak_store, run_id))  # load starts
    assert result is not None
    pid = int((ssh_host.remote_dir / f"run-{run_id}" / "pid").read_text())
    assert session_alive(pid)

    assert cancel_run(soak_store, run_id).state == "soaking"  # stops at its next step
    run = drive(soak_config, soak_store, run_id)

    assert run.state == RunState.CANCELLED
    assert not session_alive(pid)
    with soak_store.session() as session:
        assert session.get(HostState, "laptop").run_id is None
        assert session.scalars(select(Sample).where(Sample.run_id == run_id)).first() is not None


def test_a_run_is_stepped_only_on_its_own_host(soak_config: FarmConfig, soak_store: Store) -> None:
    run_id = queue_run(
        soak_config,
        soak_store,
        kind=RunKind.HEALTH,
        host="laptop",
        commit="x",
        load="idle-loop",
        soak_seconds=1,
        send=False,
    )
    with soak_store.session() as session:
        session.get(Run, run_id).host = "elsewhere"
    with pytest.raises(FarmBug, match="is for host elsewhere"):
        lifecycle.advance(ctx_for(soak_config, soak_store), run_id, 0)


def test_a_host_without_the_loads_tool_ends_infra_not_as_a_hang(
    soak_config: FarmConfig, soak_store: Store
) -> None:
    run_id = new_run(soak_config, soak_store, load="needs-missing-tool", seconds=10)

    run = drive(soak_config, soak_store, run_id)

    assert (run.verdict, run.reasons) == (
        Verdict.INFRA,
        ["infrastructure: load needs-missing-tool needs 'farm-no-such-tool', which the host lacks"],
    )
