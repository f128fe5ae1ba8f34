# SPDX-License-Identifier: Apache-2.0
"""A bisection driven end to end: two QEMU hosts, real Celery workers, beat and Redis.

A 4-patch series on linux-source 6.1 whose bad patch is known: patch 3 adds a
``BUG_ON`` to the drop_caches sysctl handler for the value 1, which the test load
(tests/bisect/loads/drop-caches.toml) writes every second, so kernels 3 and 4 crash
within seconds of the load starting and kernels 0-2 never do. Patches 1, 2 and 4 add
comments at the end of the same file (the BUG's line, hence its title, stays put).
The commits are made with git plumbing and stored as intake would store them (intake
itself is tested in tests/intake; its worktree checkout takes minutes on a busy box).

``submit_runs`` soaks the base and the full series on one host; the patched run ends
FAIL with the BUG; the beat's reconciler requests a bisection by itself (bisect.auto),
starts it, and queues bisect runs on both hosts until the engine names patch 3. The
[bisect] section sets the engine to this farm's scale: seconds, not hours.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv
from soakstack import qemu_services
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.build.tree import BASE_TAG
from farm.config import FarmConfig, load_config
from farm.git import git, resolve
from farm.scheduler.api import submit_runs, wait_for_runs
from farm.scheduler.bisecting import wait_for_bisection
from farm.services import LocalServices
from farm.store import Store
from farm.store.bisect import Bisection, BisectState
from farm.store.runs import Crash, Run, RunKind
from farm.store.series import Application, AppliedCommit, Patch, Series

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel]
NAMES = ("bisect-a", "bisect-b")
FILE = "fs/drop_caches.c"
LOADS = Path(__file__).parents[1] / "bisect" / "loads"
TRIGGER = "\tif (write) {\n"


SUBJECTS = [
    "fs/drop_caches: note 1 for the bisect test",
    "fs/drop_caches: note 2 for the bisect test",
    "fs/drop_caches: refuse to drop only the page cache",
    "fs/drop_caches: note 4 for the bisect test",
]


def patched_texts(text: str) -> list[tuple[str, str]]:
    """(subject, FILE's new content) for patches 1..4, each on top of the previous one."""
    assert text.count(TRIGGER) == 1, "the drop_caches handler moved"
    out = []
    for n, subject in enumerate(SUBJECTS, start=1):
        if n == 3:
            text = text.replace(TRIGGER, TRIGGER + "\t\tBUG_ON(sysctl_drop_caches == 1);\n")
        else:
            text += f"/* farm bisect test: note {n} */\n"
        out.append((subject, text))
    return out


def commit_series(tree: Path, ref: str) -> tuple[str, list[str]]:
    """(base, commits of patches 1..4) made with a private index: no checkout of the
    tree, which takes minutes on a loaded machine. ``ref`` keeps them from gc."""
    base = resolve(tree, BASE_TAG)
    parent, commits = base, []
    with tempfile.TemporaryDirectory(prefix="farm-bisect-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        for subject, text in patched_texts(git(tree, "show", f"{base}:{FILE}")):
            blob = git(tree, "hash-object", "-w", "--stdin", input=text.encode()).strip()
            git(tree, "read-tree", parent, env=env)
            git(tree, "update-index", "--cacheinfo", f"100644,{blob},{FILE}", env=env)
            snapshot = git(tree, "write-tree", env=env).strip()
            parent = git(tree, "commit-tree", snapshot, "-p", parent, "-m", subject).strip()
            commits.append(parent)
    git(tree, "update-ref", ref, parent)
    return base, commits


@pytest.fixture(scope="module")
def bisect_config(
    kernel_build_env: KernelBuildEnv, tmp_path_factory: pytest.TempPathFactory
) -> FarmConfig:
    root = tmp_path_factory.mktemp("bisect-qemu")
    hosts = "".join(
        f'[[hosts]]\nname = "{name}"\nkind = "qemu"\nboot_timeout = 240\n'
        f"[hosts.qemu]\nmemory_mb = 384\n"
        for name in NAMES
    )
    path = root / "farm.toml"
    # Build artefacts are the session's, so the workers' build steps hit the cache.
    path.write_text(
        f'data_dir = "{kernel_build_env.data_dir}"\n'
        f'database_url = "sqlite:///{root / "farm.db"}"\n'
        f'loads_dir = "{LOADS}"\n'
        "[scheduler]\nsample_interval = 2.0\nhang_grace = 10.0\nlease_seconds = 10.0\n"
        "reconcile_seconds = 2.0\noverdue_seconds = 15.0\n"
        "[bisect]\nstep_overhead_hours = 0.01\nmin_step_hours = 0.008\n"
        "max_step_hours = 0.025\nprior_scale_hours = 0.01\n\n"
        f'[[trees]]\nname = "linux"\npath = "{kernel_build_env.tree}"\n\n{hosts}'
    )
    return load_config(path)


@dataclass(frozen=True)
class Applied:
    base: str
    commits: list[str]  # patches 1..4
    series_id: int
    application_id: int


@pytest.fixture(scope="module")
def applied(
    bisect_config: FarmConfig, kernel_build_env: KernelBuildEnv, soak_kernel: KernelArtifacts
) -> Iterator[Applied]:
    """The series committed on the base and stored as intake would, its kernels built now."""
    tree = kernel_build_env.tree
    ref = f"refs/farm-test/bisect-{os.getpid()}"
    base, commits = commit_series(tree, ref)
    store = Store(bisect_config.db_url)
    try:
        with store.session() as session:
            series = Series(title="drop_caches BUG", total=4, source="test", content_hash=ref)
            series.patches = [
                Patch(
                    index=k,
                    subject=subject,
                    full_subject=f"[PATCH {k}/4] {subject}",
                    author="Farm Test <farm@example.org>",
                    message_id=f"<bisect-test.{k}@farm.example.org>",
                    files=[FILE],
                    raw=git(tree, "format-patch", "--stdout", "-1", commits[k - 1]).encode(),
                )
                for k, subject in enumerate(SUBJECTS, start=1)
            ]
            app = Application(series=series, tree=str(tree), base_commit=base, branch=ref)
            app.commits = [AppliedCommit(index=k, sha=c) for k, c in enumerate(commits, 1)]
            session.add(app)
            session.flush()
            ids = series.id, app.id
        for commit in commits:
            kernel_build_env.build(commit)
        yield Applied(base, commits, *ids)
    finally:
        store.dispose()
        git(tree, "update-ref", "-d", ref)


@pytest.fixture(scope="module")
def stack(
    bisect_config: FarmConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FarmConfig, Store, LocalServices]]:
    with qemu_services(bisect_config, tmp_path_factory.mktemp("logs"), NAMES) as running:
        yield running


def _first_bisection(store: Store, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.session() as session:
            found = session.scalar(select(Bisection.id).order_by(Bisection.id).limit(1))
        if found is not None:
            return found
        time.sleep(1)
    raise AssertionError("no bisection was requested for the failed run")


def test_a_failed_run_is_bisected_to_the_patch_that_added_the_bug(
    applied: Applied, stack: tuple[FarmConfig, Store, LocalServices]
) -> None:
    config, store, local = stack

    submitted = submit_runs(
        config,
        store,
        hosts=[NAMES[0]],
        base_commit=applied.base,
        commit=applied.commits[3],
        upto=4,
        load="drop-caches",
        soak_seconds=30,
        series_id=applied.series_id,
        application_id=applied.application_id,
    )
    first = wait_for_runs(store, submitted, timeout=900, poll=5, progress=print)
    assert [(s.kind, s.verdict) for s in first] == [("baseline", "PASS"), ("patched", "FAIL")], (
        [s.reasons for s in first],
        local.log("worker-1")[-4000:],
    )

    bid = _first_bisection(store, timeout=60)
    b = wait_for_bisection(
        store, bid, timeout=1200, progress=lambda b: print(b.state, b.posterior), poll=5
    )

    with store.session() as session:
        runs = session.scalars(select(Run).where(Run.bisection_id == bid).order_by(Run.id)).all()
        tested = [(r.upto, r.host, r.verdict and r.verdict.value) for r in runs]
        titles = {
            c.title for c in session.scalars(select(Crash).join(Run).where(Run.bisection_id == bid))
        }
        patched = session.get(Run, submitted[-1])
        assert patched is not None and patched.kind == RunKind.PATCHED
    print("bisect runs:", tested, "result:", b.result)
    assert b.state == BisectState.DONE, (b.result, tested, local.log("worker-1")[-4000:])
    assert (b.culprit, b.requested_by, b.run_id) == (3, "auto", submitted[-1]), (b.result, tested)
    assert b.result["confidence"] >= 0.95
    assert {k for k, _, _ in tested} & {1, 2, 3}, tested  # kernels between were soaked
    assert {h for _, h, _ in tested} == set(NAMES)  # on both hosts
    assert b.regression in titles and "drop_caches" in b.regression, titles
    assert all(v == "FAIL" for k, _, v in tested if k >= 3 and v is not None), tested
    assert all(v in ("PASS", None) for k, _, v in tested if k < 3), tested
