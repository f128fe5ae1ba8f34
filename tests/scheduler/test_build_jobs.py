# SPDX-License-Identifier: Apache-2.0
"""The build queue's bookkeeping (farm.scheduler.builds), on SQLite and PostgreSQL: one
build per (commit, config hash) however many runs ask at once, one claimant per build
however many workers take its job, a lost job sent again, a kernel failure kept for
every waiting run. Real threads with their own connections, released together (the
races are PostgreSQL's; SQLite serialises them). The broker is the one seam: the jobs
sent are recorded instead (real workers: test_build_queue.py)."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from farm.config import FarmConfig
from farm.errors import InfraError, KernelError
from farm.scheduler import builds
from farm.scheduler.builds import BuildRequest
from farm.scheduler.workers import Building, register
from farm.store import Store
from farm.store.base import utcnow
from farm.store.builds import Build, BuildState
from farm.store.workers import Worker

from .test_concurrency import at_once


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The build jobs sent to the broker, in order."""
    jobs: list[int] = []
    monkeypatch.setattr(builds, "send_build", lambda build_id: jobs.append(build_id) or True)
    return jobs


def request_for(commit: str = "c" * 40) -> BuildRequest:
    return BuildRequest(tree="/srv/linux", commit=commit, config_hash="f" * 64)


def test_many_runs_asking_for_one_kernel_at_once_make_one_build_and_one_job(
    config: FarmConfig, store: Store, sent: list[int]
) -> None:
    stores = [Store(store.url) for _ in range(4)]
    for round_, commit in enumerate("abcde"):
        request = request_for(commit * 40)
        rows = at_once(*(partial(builds.ask, config, s, request) for s in stores))

        ids = {row.id for row in rows if isinstance(row, Build)}
        assert len(ids) == 1, f"round {round_}"
        assert sent[round_:] == list(ids)  # its job sent once, by the one that inserted it
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Build)) == 5
    for s in stores:
        s.dispose()


def test_two_workers_taking_one_build_job_build_it_once(
    config: FarmConfig, store: Store, sent: list[int]
) -> None:
    """A job delivered twice (broker redelivery, a re-send) is built by one worker; the
    worker that has it may take it again after a restart, no one else."""
    for round_ in range(5):
        row = builds.ask(config, store, request_for(str(round_) * 40))
        workers = [Store(store.url), Store(store.url)]
        claims = at_once(
            partial(builds.claim, workers[0], row.id, "a@lab"),
            partial(builds.claim, workers[1], row.id, "b@lab"),
        )

        won = [name for name, got in zip(("a@lab", "b@lab"), claims, strict=True) if got]
        assert len(won) == 1, f"round {round_}"
        assert builds.claim(store, row.id, won[0]) == request_for(str(round_) * 40)
        assert builds.claim(store, row.id, "c@lab") is None
        with store.session() as session:
            assert session.get(Build, row.id).builder == won[0]  # type: ignore[union-attr]
        for s in workers:
            s.dispose()


def test_a_job_nobody_took_or_whose_builder_died_is_sent_again(
    config: FarmConfig, store: Store, sent: list[int]
) -> None:
    request = request_for()
    row = builds.ask(config, store, request)
    assert builds.ask(config, store, request).state == BuildState.REQUESTED
    assert sent == [row.id]  # not overdue yet: no second job

    long_ago = utcnow() - dt.timedelta(seconds=config.scheduler.overdue_seconds + 60)
    with store.session() as session:
        session.execute(update(Build).values(updated_at=long_ago))
    builds.ask(config, store, request)
    assert sent == [row.id, row.id]

    register(store, "a@lab", [], Building(builds=True))
    assert builds.claim(store, row.id, "a@lab") is not None
    assert builds.ask(config, store, request).builder == "a@lab"  # a@lab beats: its build
    assert sent == [row.id, row.id]
    silent = utcnow() - dt.timedelta(seconds=4 * config.scheduler.heartbeat_seconds)
    with store.session() as session:
        session.execute(update(Worker).values(heartbeat_at=silent))
    builds.ask(config, store, request)  # a@lab stopped beating mid-build
    assert sent == [row.id, row.id, row.id]
    with store.session() as session:
        again = session.get(Build, row.id)
        assert again is not None and (again.state, again.builder) == (BuildState.REQUESTED, None)


def test_a_kernel_that_does_not_build_ends_every_run_waiting_for_it(
    config: FarmConfig, store: Store, sent: list[int]
) -> None:
    request = request_for()
    row = builds.ask(config, store, request)
    builds.claim(store, row.id, "a@lab")
    error = "mm/huge_memory.c:12:1: error: expected ';' before '}' token"
    with store.session() as session:
        session.execute(update(Build).values(state=BuildState.FAILED, fault="kernel", error=error))

    for _ in range(2):  # each run waiting for it, and any later one
        with pytest.raises(KernelError) as failed:
            builds.artefacts(config, store, request)
        assert failed.value.message == error
    assert sent == [row.id]  # not built again


def test_a_build_our_side_failed_is_asked_again_as_an_infrastructure_failure(
    config: FarmConfig, store: Store, sent: list[int]
) -> None:
    request = request_for()
    row = builds.ask(config, store, request)
    builds.claim(store, row.id, "a@lab")
    with store.session() as session:
        session.execute(
            update(Build).values(state=BuildState.FAILED, fault="infra", error="disk full")
        )

    with pytest.raises(InfraError, match="failed on a@lab: disk full"):
        builds.artefacts(config, store, request)

    assert sent == [row.id, row.id]
    assert builds.artefacts(config, store, request) is None  # waiting for the new job


def test_a_fetched_copy_is_checked_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "bzImage").write_bytes(b"kernel")
    (tmp_path / ".config").write_text("CONFIG_64BIT=y\n")
    sums = builds.checksums(tmp_path)
    assert sorted(sums) == [".config", "bzImage"]

    (tmp_path / "bzImage").write_bytes(b"kernel, truncated")
    with pytest.raises(InfraError, match="bzImage fetched from a@lab:/b does not match"):
        builds.verify_copy(tmp_path, sums, "a@lab:/b")


def test_a_build_nobody_serves_ends_the_wait_with_what_to_start(
    config: FarmConfig, store: Store, sent: list[int]
) -> None:
    """Runs do not wait forever for a build queue no worker serves: once the request is
    overdue with no live builder, the step says so (an infrastructure failure, retried
    within the run's budget). A live builder, even a busy one, is waited for."""
    request = request_for()
    builds.ask(config, store, request)
    assert builds.artefacts(config, store, request) is None  # not overdue yet

    long_ago = utcnow() - dt.timedelta(seconds=config.scheduler.overdue_seconds + 60)
    with store.session() as session:
        session.execute(update(Build).values(updated_at=long_ago))
    with pytest.raises(InfraError, match="no live worker serves the build queue") as failed:
        builds.artefacts(config, store, request)
    assert "farm worker --build" in (failed.value.hint or "")

    register(store, "a@lab", [], Building(builds=True))
    with store.session() as session:
        session.execute(update(Build).values(updated_at=long_ago))
    assert builds.artefacts(config, store, request) is None  # a@lab beats: its job is re-sent


def test_a_build_that_hits_a_bug_of_ours_is_failed_not_left_building(
    config: FarmConfig, store: Store, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builder's heartbeat goes on after such a bug, so only the row can tell the
    waiting runs: failed, ours, asked again within their retries. The bug is injected
    (no real input is known to cause one); the bookkeeping around it is real."""

    def bug(*_: object) -> None:
        raise ZeroDivisionError("division by zero")

    request = request_for()
    row = builds.ask(config, store, request)
    monkeypatch.setattr(builds, "_build", bug)
    with pytest.raises(ZeroDivisionError):
        builds.run(config, store, row.id, "a@lab")

    with store.session() as session:
        failed = session.get(Build, row.id)
        assert failed is not None and (failed.state, failed.fault) == (BuildState.FAILED, "infra")
        assert failed.error == "farm bug: ZeroDivisionError('division by zero')"
    with pytest.raises(InfraError, match="farm bug"):
        builds.artefacts(config, store, request)
