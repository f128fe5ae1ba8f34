# SPDX-License-Identifier: Apache-2.0
"""Build once, boot many, with two real workers of their own data directories sharing
one database and one Redis: worker A builds and serves no host; worker B serves the
two QEMU hosts and may not build (``[worker] build = false``). Both hosts need the
same kernel at once: A builds it once (a cache hit on the session's soak kernel, so
the test costs no compile), B fetches it from A's artefact directory with rsync over
a real sshd on loopback (B's key, the sshd's host key verified from B's known_hosts),
checks it, boots it on both hosts and soaks them."""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv
from soakstack import running_sshd
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.config import FarmConfig, load_config
from farm.hosts.qemu import QemuVm
from farm.scheduler.api import RunStatus, queue_run, wait_for_runs
from farm.services import LocalServices, worker_args
from farm.store import Store
from farm.store.builds import Build, BuildState
from farm.store.runs import RunKind
from farm.store.workers import Worker

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel]
HOSTS = ("laptop", "workstation")
TIMINGS = (
    "[scheduler]\nsample_interval = 2.0\nhang_grace = 10.0\nlease_seconds = 10.0\n"
    "reconcile_seconds = 2.0\noverdue_seconds = 15.0\n"
)


@dataclass(frozen=True)
class Lab:
    config: FarmConfig  # worker B's, which the test submits with
    store: Store
    stack: LocalServices
    builder_data: Path  # worker A's data directory


def farm_toml(path: Path, data_dir: Path, database: Path, tree: Path, rest: str) -> Path:
    path.write_text(
        f'data_dir = "{data_dir}"\ndatabase_url = "sqlite:///{database}"\n{rest}\n'
        f'{TIMINGS}\n[[trees]]\nname = "linux"\npath = "{tree}"\n'
    )
    return path


def builder_toml(root: Path, tree: Path, sshd_port: int) -> Path:
    """Worker A: builds, serves no host, lets others fetch over SSH."""
    worker = (
        f'[worker]\nbuild = true\nbuild_jobs = 2\nccache_dir = "{root / "ccache"}"\n'
        f'artefact_address = "{getpass.getuser()}@127.0.0.1:{sshd_port}"\n'
    )
    return farm_toml(root / "a.toml", root / "a", root / "farm.db", tree, f"hosts = []\n{worker}")


def booter_toml(root: Path, data_dir: Path, tree: Path) -> Path:
    """Worker B: the two QEMU hosts, no builds."""
    hosts = "".join(
        f'\n[[hosts]]\nname = "{name}"\nkind = "qemu"\nboot_timeout = 240\n'
        "[hosts.qemu]\nmemory_mb = 384\n"
        for name in HOSTS
    )
    return farm_toml(
        root / "b.toml", data_dir, root / "farm.db", tree, f"{hosts}\n[worker]\nbuild = false\n"
    )


@pytest.fixture(scope="module")
def lab(
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("build-queue")
    builder_data = root / "a"
    # A's earlier build of this kernel, so that A's build job is a cache hit.
    shutil.copytree(soak_kernel.dir, builder_data / "builds" / soak_kernel.dir.name)
    tree = kernel_build_env.tree
    (root / "b").mkdir()
    # The sshd that serves A's files trusts B's client key; B's known_hosts has its key.
    with running_sshd(root / "b") as sshd:
        a_toml = builder_toml(root, tree, sshd.port)
        config = load_config(booter_toml(root, sshd.data_dir, tree))
        store = Store(config.db_url)
        with LocalServices(root / "b.toml", root / "logs") as stack:
            config = config.model_copy(update={"broker_url": stack.broker_url})
            stack.start("worker-a", ["--config", str(a_toml), *worker_args("worker-a")])
            stack.start_worker("worker-b", hosts=list(HOSTS), concurrency=3)
            stack.start_beat()
            try:
                yield Lab(config, store, stack, builder_data)
            finally:
                for name in HOSTS:
                    QemuVm(config.host(name), config.data_dir).stop()
                store.dispose()


def sha256s(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_a_kernel_built_by_one_worker_is_fetched_and_booted_by_another_for_two_hosts(
    lab: Lab, soak_kernel: KernelArtifacts
) -> None:
    config, store, stack = lab.config, lab.store, lab.stack
    run_ids = [
        queue_run(
            config,
            store,
            kind=RunKind.BASELINE,
            host=name,
            commit=soak_kernel.commit,
            load="thp-split",
            soak_seconds=15,
        )
        for name in HOSTS
    ]
    seen: dict[int, list[str]] = {run_id: [] for run_id in run_ids}

    def note(statuses: list[RunStatus]) -> None:
        for status in statuses:
            if seen[status.id][-1:] != [status.state]:
                seen[status.id].append(status.state)

    final = wait_for_runs(store, run_ids, timeout=900, poll=1, progress=note)

    logs = f"A:\n{stack.log('worker-a')[-3000:]}\nB:\n{stack.log('worker-b')[-3000:]}"
    assert [(s.state, s.verdict) for s in final] == [("done", "PASS")] * 2, logs
    for states in seen.values():  # each run waited for the kernel, then booted it
        waited = [s for s in states if s in ("building", "booting", "soaking", "done")]
        assert waited == ["building", "booting", "soaking", "done"], seen
    with store.session() as session:
        [build] = session.scalars(select(Build)).all()  # one build for both hosts
        workers = {w.name.split("@")[0]: w for w in session.scalars(select(Worker))}
    assert (build.commit, build.state) == (soak_kernel.commit, BuildState.OK)
    assert build.builder == workers["worker-a"].name
    assert (workers["worker-a"].builds, workers["worker-b"].builds) == (True, False)
    assert workers["worker-a"].artefact_address is not None
    # Built in A's data directory, copied (not linked: fetched over SSH) to B's: the same
    # bytes, as B checked before booting them.
    built = lab.builder_data / "builds" / soak_kernel.dir.name
    assert build.artifacts_dir == str(built)
    fetched = config.data_dir / "builds" / soak_kernel.dir.name
    assert build.files == sha256s(built) == sha256s(fetched)
    assert "bzImage" in build.files
    # One request (however many runs asked), one build on A, one fetch by B.
    assert stack.log("worker-b").count(f"build {build.id} of {build.commit[:12]} requested") == 1
    assert stack.log("worker-a").count(f"build {build.id}: {build.commit[:12]} on worker-a@") == 1
    assert stack.log("worker-b").count(f"build {build.id} fetched from worker-a@") == 1
    assert os.stat(built / "bzImage").st_ino != os.stat(fetched / "bzImage").st_ino
