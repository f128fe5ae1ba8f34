# SPDX-License-Identifier: Apache-2.0
"""Soaks of real kernels on two QEMU hosts, through real Celery workers and Redis.

A one-patch series (a comment in mm/huge_memory.c) is applied on linux-source 6.1 and
built incrementally on the session's soak kernel. ``submit_runs`` queues, per host, a
baseline run of the base and a run of the patched kernel with the thp-split load; the
workers build (cached), boot, soak, quiesce and judge them. Then one VM is killed in
the middle of a soak: the run must end FAIL as a hang, the VM power-cycled.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv
from soakstack import qemu_services
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.build.tree import BASE_TAG
from farm.config import FarmConfig, load_config
from farm.ending import PowerCycle, Verdict
from farm.errors import InfraError
from farm.git import git
from farm.hosts import get_host
from farm.hosts.qemu import QemuVm
from farm.intake.apply import Worktree, apply_patches
from farm.intake.mbox import read_mails
from farm.intake.series import group_series
from farm.metrics.exporter import Exposition
from farm.scheduler.api import queue_run, statuses, submit_runs, wait_for_runs
from farm.services import LocalServices
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import ConsoleLine, Sample

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel]
NAMES = ("laptop", "workstation")
PATCHED = "mm/huge_memory.c"


def one_patch_mbox(tree: Path) -> str:
    old = git(tree, "show", f"{BASE_TAG}:{PATCHED}").splitlines(keepends=True)
    new = [old[0], "/* farm: the scheduler test soaks this kernel */\n", *old[1:]]
    diff = "".join(difflib.unified_diff(old, new, f"a/{PATCHED}", f"b/{PATCHED}", n=3))
    return (
        "From farm Mon Jan  1 00:00:00 2024\n"
        "From: Farm Test <farm@example.org>\n"
        "Subject: [PATCH] mm/huge_memory: mark the kernel the scheduler test soaks\n"
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <scheduler-test.1@farm.example.org>\n\n"
        "A comment only.\n\nSigned-off-by: Farm Test <farm@example.org>\n---\n"
        f"diff --git a/{PATCHED} b/{PATCHED}\n{diff}-- \n2.39.2\n\n"
    )


@pytest.fixture(scope="module")
def kernels(
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[KernelArtifacts, KernelArtifacts]:
    """(base, patched), both built now so the workers' build steps hit the cache."""
    root = tmp_path_factory.mktemp("series")
    (root / "series.mbox").write_text(one_patch_mbox(kernel_build_env.tree))
    series = group_series(read_mails(root / "series.mbox"))
    branch = f"farm-scheduler-test-{os.getpid()}"
    worktree = Worktree(kernel_build_env.tree, root / "wt", branch)
    commits = apply_patches(worktree, BASE_TAG, series.patches)
    try:
        return soak_kernel, kernel_build_env.build(commits[1])
    finally:
        worktree.remove()


@pytest.fixture(scope="module")
def qemu_config(
    kernel_build_env: KernelBuildEnv, tmp_path_factory: pytest.TempPathFactory
) -> FarmConfig:
    root = tmp_path_factory.mktemp("qemu-soak")
    hosts = "".join(
        f'[[hosts]]\nname = "{name}"\nkind = "qemu"\nboot_timeout = 240\n'
        f"[hosts.qemu]\nmemory_mb = 384\n"
        for name in NAMES
    )
    path = root / "farm.toml"
    # The build artefacts are the session's, so a build step finds them cached.
    path.write_text(
        f'data_dir = "{kernel_build_env.data_dir}"\n'
        f'database_url = "sqlite:///{root / "farm.db"}"\n'
        "[scheduler]\nsample_interval = 2.0\nhang_grace = 10.0\nlease_seconds = 10.0\n"
        "reconcile_seconds = 2.0\noverdue_seconds = 15.0\n\n"
        f'[[trees]]\nname = "linux"\npath = "{kernel_build_env.tree}"\n\n{hosts}'
    )
    return load_config(path)


@pytest.fixture(scope="module")
def qemu_stack(
    qemu_config: FarmConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FarmConfig, Store, LocalServices]]:
    with qemu_services(qemu_config, tmp_path_factory.mktemp("logs"), NAMES) as running:
        yield running


def test_a_series_on_two_qemu_hosts_runs_baseline_and_patched_soaks_to_verdicts(
    qemu_stack: tuple[FarmConfig, Store, LocalServices],
    kernels: tuple[KernelArtifacts, KernelArtifacts],
) -> None:
    config, store, stack = qemu_stack
    base, patched = kernels

    run_ids = submit_runs(
        config,
        store,
        hosts=list(NAMES),
        base_commit=base.commit,
        commit=patched.commit,
        upto=1,
        load="thp-split",
        soak_seconds=20,
    )
    final = wait_for_runs(store, run_ids, timeout=1500, poll=5, progress=print)

    assert [(s.host, s.kind) for s in final] == [
        ("laptop", "baseline"),
        ("laptop", "patched"),
        ("workstation", "baseline"),
        ("workstation", "patched"),
    ], stack.log("worker-1")[-4000:]
    assert [s.state for s in final] == ["done"] * 4, stack.log("worker-1")[-4000:]
    assert [s.verdict for s in final] == ["PASS"] * 4, [s.reasons for s in final]
    with store.session() as session:
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids)).order_by(Run.id)).all()
        for run in runs:
            kernel = patched if run.kind == RunKind.PATCHED else base
            assert run.kernel_release == kernel.release
            samples = session.scalars(select(Sample).where(Sample.run_id == run.id)).all()
            assert len(samples) >= 5
            assert session.scalar(select(ConsoleLine.id).where(ConsoleLine.run_id == run.id))
        by_host = {name: [r for r in runs if r.host == name] for name in NAMES}
    for baseline, patched_run in by_host.values():
        assert baseline.ended_at is not None and patched_run.started_at is not None
        assert baseline.ended_at <= patched_run.started_at  # the baseline soaked first
    assert patched_run.ending.baseline_run == baseline.id
    # The THP load really split huge pages, and /metrics shows it per host.
    body = Exposition(config, store).render().decode()
    for name in NAMES:
        line = next(
            x
            for x in body.splitlines()
            if x.startswith(f'farm_vmstat_thp_split_pmd_total{{host="{name}"}}')
        )
        assert int(line.split()[-1]) > 0
    info = [line for line in body.splitlines() if line.startswith("farm_run_info{")]
    for run_id in run_ids:  # recent runs stay visible
        assert any(f'run="{run_id}",' in line for line in info)


def test_killing_a_qemu_host_mid_soak_is_a_hang_power_cycled_and_a_fail(
    qemu_stack: tuple[FarmConfig, Store, LocalServices],
    kernels: tuple[KernelArtifacts, KernelArtifacts],
) -> None:
    config, store, _ = qemu_stack
    base, _ = kernels
    run_id = queue_run(
        config,
        store,
        kind=RunKind.HEALTH,
        host="laptop",
        commit=base.commit,
        load="thp-split",
        soak_seconds=600,
    )
    vm = QemuVm(config.host("laptop"), config.data_dir)
    wait_soaking(store, run_id)
    killed = vm.pid()
    assert killed is not None
    os.kill(killed, 9)

    [status] = wait_for_runs(store, [run_id], timeout=300, poll=2)

    assert (status.state, status.verdict) == ("done", Verdict.FAIL)
    assert status.reasons[0].startswith("hang: laptop did not answer for ")
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.ending.power_cycle == PowerCycle(done=True, text="laptop power-cycled via qemu")
        assert run.ending.console_tail  # the console's last lines, kept as evidence
    assert vm.pid() not in (None, killed)  # a new VM process: power-cycled


def wait_soaking(store: Store, run_id: int, samples: int = 2) -> None:
    deadline = time.monotonic() + 600
    while True:
        with store.session() as session:
            run = session.get(Run, run_id)
            count = len(session.scalars(select(Sample.id).where(Sample.run_id == run_id)).all())
        if run is not None and run.state == RunState.SOAKING and count >= samples:
            return
        assert time.monotonic() < deadline, statuses(store, [run_id])
        time.sleep(2)


def test_a_panic_fails_the_run_with_its_title_without_waiting_for_a_hang(
    qemu_stack: tuple[FarmConfig, Store, LocalServices],
    kernels: tuple[KernelArtifacts, KernelArtifacts],
) -> None:
    config, store, _ = qemu_stack
    run_id = queue_run(
        config,
        store,
        kind=RunKind.HEALTH,
        host="workstation",
        commit=kernels[0].commit,
        load="thp-split",
        soak_seconds=600,
    )
    wait_soaking(store, run_id)
    with suppress(InfraError), get_host(config, "workstation").transport() as ssh:
        ssh.run("echo c > /proc/sysrq-trigger", timeout=10, check=False)  # drops SSH

    [status] = wait_for_runs(store, [run_id], timeout=300, poll=2)

    assert (status.state, status.verdict) == ("done", Verdict.FAIL)
    assert status.reasons[0].startswith("crash: "), status.reasons
    assert not any(r.startswith("hang:") for r in status.reasons)
    with store.session() as session:
        [crash] = session.scalars(select(Crash).where(Crash.run_id == run_id)).all()
        assert "sysrq" in crash.report.lower()
        run = session.get(Run, run_id)
        assert run is not None and run.ending.power_cycle == PowerCycle(
            done=True, text="workstation power-cycled via qemu"
        )
