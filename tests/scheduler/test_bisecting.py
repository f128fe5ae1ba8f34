# SPDX-License-Identifier: Apache-2.0
"""The bisection driver on a real store: requests, evidence from stored runs, decisions,
and bisect runs queued through a real Redis (no workers: the runs stay queued).

The rows are those the soak pipeline writes: a series applied as an application with
one commit per patch, runs with verdicts and crashes, a baseline on the same host.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from farm.bisect.engine import Outcome
from farm.config import FarmConfig, load_config
from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.errors import UserError
from farm.scheduler.api import advance_bisections
from farm.scheduler.bisecting import request_bisection
from farm.scheduler.verdict import hang_finding, reboot_finding
from farm.services import LocalServices
from farm.store import Store
from farm.store.bisect import Bisection, BisectState, BisectStep
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import ConsoleLine
from farm.store.series import Application, AppliedCommit, Patch, Series

TITLE = "list_del corruption, ffff888003f1b2c8->next is LIST_POISON1 (dead000000000100)"
OTHER = "BUG: unable to handle page fault for address: ffffffffffffffe0"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BASE = "b" * 40


def sha(k: int) -> str:
    return f"{k:02d}" * 20


@pytest.fixture
def bisect_toml(farm_toml: Path) -> Path:
    farm_toml.write_text(
        farm_toml.read_text()
        + "[bisect]\nstep_overhead_hours = 0.02\nmin_step_hours = 0.05\nmax_step_hours = 0.2\n"
        "prior_scale_hours = 0.1\n"
    )
    return farm_toml


@pytest.fixture
def cfg(bisect_toml: Path) -> FarmConfig:
    return load_config(bisect_toml)


@pytest.fixture
def application(store: Store) -> int:
    """A 4-patch series applied on BASE: patch k's commit is sha(k)."""
    with store.session() as session:
        series = Series(title="mm: demo", total=4, source="test.mbox", content_hash="h")
        series.patches = [
            Patch(
                index=k,
                subject=f"mm: step {k}",
                full_subject=f"[PATCH 0{k}/04] mm: step {k}",
                author="Dev <dev@example.org>",
                raw=f"diff --git a/mm/f{k}.c b/mm/f{k}.c\n+int f{k}(void);\n".encode(),
            )
            for k in range(1, 5)
        ]
        app = Application(series=series, tree="/srv/linux", base_commit=BASE, branch="farm/demo")
        app.commits = [AppliedCommit(index=k, sha=sha(k)) for k in range(1, 5)]
        session.add(app)
        session.flush()
        return app.id


def add_run(
    store: Store,
    app_id: int,
    *,
    kind: RunKind,
    upto: int,
    verdict: Verdict | None,
    hours: float | None = 1.0,
    host: str = "laptop",
    crashes: tuple[tuple[str, float], ...] = (),
    bisection_id: int | None = None,
    findings: list[Finding] | None = None,
    baseline: int | None = None,
    state: RunState | None = None,
) -> int:
    """A run that soaked ``hours`` (None: never reached its load) with these crashes
    (title, uptime hours); in flight when verdict and state are None."""
    with store.session() as session:
        app = session.get(Application, app_id)
        assert app is not None
        done = verdict is not None
        start = T0 if hours is not None else None
        run = Run(
            kind=kind,
            series_id=app.series_id,
            application_id=app_id,
            bisection_id=bisection_id,
            upto=upto,
            commit=app.commit_for(upto),
            host=host,
            load="thp-split",
            soak_seconds=3600.0,
            state=state or (RunState.DONE if done else RunState.SOAKING),
            verdict=verdict,
            ending=RunEnding(
                findings=[crashed(t) for t, _ in crashes] + (findings or []),
                baseline_run=baseline,
            ),
            load_started_at=start,
            ended_at=T0 + dt.timedelta(hours=hours or 0) if done else None,
        )
        if not done and hours is not None:
            run.load_started_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
        session.add(run)
        session.flush()
        for title, at in crashes:
            session.add(
                Crash(
                    run_id=run.id,
                    host=host,
                    title=title,
                    alt_titles=[],
                    kind="BUG",
                    signature=title[:16],
                    report=title,
                    uptime_seconds=at * 3600,
                )
            )
        return run.id


def crashed(title: str) -> Finding:
    return Finding(cause=Cause.CRASH, text=f"crash: {title}", title=title)


def kernel_fault(stage: str) -> Finding:
    return Finding(cause=Cause.KERNEL, text=f"{stage} failed")


def counter(name: str) -> Finding:
    return Finding(cause=Cause.COUNTER, text=f"counter {name}: grew", counter=name, rule="growth")


def bisect_run(store: Store, app_id: int, bid: int, **fields: Any) -> int:
    return add_run(store, app_id, kind=RunKind.BISECT, bisection_id=bid, **fields)


def failing_run(store: Store, app_id: int, **extra: Any) -> int:
    return add_run(
        store,
        app_id,
        kind=RunKind.PATCHED,
        upto=4,
        verdict=Verdict.FAIL,
        hours=2.0,
        crashes=((TITLE, 2.0),),
        **extra,
    )


def steps(store: Store, bid: int) -> list[tuple[int | None, int, str, float]]:
    with store.session() as session:
        rows = session.scalars(
            select(BisectStep).where(BisectStep.bisection_id == bid).order_by(BisectStep.seq)
        )
        return [(s.run_id, s.kernel, s.outcome, round(s.uptime_hours, 2)) for s in rows]


def bisection(store: Store, bid: int) -> Bisection:
    with store.session() as session:
        b = session.get(Bisection, bid)
        assert b is not None
        session.expunge(b)
        return b


# -- requests --------------------------------------------------------------------------


def test_a_request_hunts_the_runs_first_crash_and_asking_again_returns_the_same_one(
    store: Store, application: int
) -> None:
    run = failing_run(store, application)

    first = request_bisection(store, run, hosts=["laptop"], max_hours=48)
    again = request_bisection(store, run)

    assert again == first
    b = bisection(store, first)
    assert (b.regression, b.regression_kind, b.state) == (TITLE, "crash", BisectState.REQUESTED)
    assert (b.hosts, b.max_hours, b.confidence) == (["laptop"], 48, 0.95)


def test_two_hosts_failing_the_same_way_share_one_bisection(store: Store, application: int) -> None:
    laptop = failing_run(store, application, host="laptop")
    workstation = failing_run(store, application, host="workstation")

    first = request_bisection(store, laptop)

    assert request_bisection(store, workstation) == first
    with store.session() as session:
        b = session.get(Bisection, first)
        assert b is not None
        b.state = BisectState.CANCELLED
    assert request_bisection(store, workstation) != first  # a cancelled hunt is not one


def test_the_shared_bisection_pools_both_hosts_failures_and_baselines(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    bases = [
        add_run(store, application, kind=RunKind.BASELINE, upto=0, verdict=Verdict.PASS, host=h)
        for h in ("laptop", "workstation")
    ]
    laptop = failing_run(store, application, host="laptop", baseline=bases[0])
    workstation = failing_run(store, application, host="workstation", baseline=bases[1])
    bid = request_bisection(store, laptop, hosts=["laptop"])

    advance_bisections(cfg, store)

    assert [(r, k, o) for r, k, o, _ in steps(store, bid)] == [
        (laptop, 4, Outcome.MATCHING),
        (workstation, 4, Outcome.MATCHING),  # the other host's failure counts too
        (bases[0], 0, Outcome.CLEAN),
        (bases[1], 0, Outcome.CLEAN),
    ]


@pytest.mark.parametrize("crashes", [(), ((TITLE, 0.5),)], ids=["counter-only", "and-a-crash"])
def test_a_run_that_failed_a_counter_bisects_that_counter_first(
    store: Store, application: int, crashes: tuple[tuple[str, float], ...]
) -> None:
    """A counter fails on every run of a bad kernel: a short, sure bisection. The
    crash, random, is hunted when asked for (--regression)."""
    run = add_run(
        store,
        application,
        kind=RunKind.PATCHED,
        upto=4,
        verdict=Verdict.FAIL,
        crashes=crashes,
        findings=[counter("nr_anon_partially_mapped")],
    )

    b = bisection(store, request_bisection(store, run))

    assert (b.regression, b.regression_kind) == ("nr_anon_partially_mapped", "counter")
    if crashes:
        crash_hunt = bisection(store, request_bisection(store, run, regression=TITLE))
        assert (crash_hunt.regression, crash_hunt.regression_kind) == (TITLE, "crash")


def test_an_alternative_crash_title_names_the_same_regression(
    store: Store, application: int
) -> None:
    run = failing_run(store, application)
    with store.session() as session:
        crash = session.scalars(select(Crash).where(Crash.run_id == run)).one()
        crash.alt_titles = ["kernel BUG at lib/list_debug.c:56!"]

    b = bisection(
        store, request_bisection(store, run, regression="kernel BUG at lib/list_debug.c:56!")
    )

    assert b.regression_kind == "crash"


@pytest.mark.parametrize(
    ("regression", "message"),
    [
        (None, "has no crash and no failed counter"),
        ("BUG: something else", "shows no crash or counter failure named 'BUG: something else'"),
    ],
)
def test_a_run_with_nothing_to_hunt_is_refused_and_nothing_is_written(
    store: Store, application: int, regression: str | None, message: str
) -> None:
    run = add_run(
        store,
        application,
        kind=RunKind.PATCHED,
        upto=4,
        verdict=Verdict.FAIL,
        findings=[hang_finding("laptop", 40.0, 3, 3.0, 30.0)],
    )

    with pytest.raises(UserError, match=message):
        request_bisection(store, run, regression=regression)

    with store.session() as session:
        assert session.scalars(select(Bisection)).all() == []


def test_a_baseline_run_is_not_a_series_to_bisect(store: Store, application: int) -> None:
    run = add_run(
        store,
        application,
        kind=RunKind.BASELINE,
        upto=0,
        verdict=Verdict.FAIL,
        crashes=((TITLE, 1),),
    )
    with pytest.raises(UserError, match="not of an applied series"):
        request_bisection(store, run)


# -- evidence and decisions (no free host, so nothing is queued) --------------------------


def test_advancing_starts_a_requested_bisection_and_maps_every_run_to_evidence(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    base = add_run(
        store, application, kind=RunKind.BASELINE, upto=0, verdict=Verdict.PASS, hours=10
    )
    run = failing_run(store, application, baseline=base)
    bid = request_bisection(store, run, hosts=["laptop"])
    unrelated = bisect_run(
        store, application, bid, upto=2, verdict=Verdict.FAIL, hours=1.5, crashes=((OTHER, 1.5),)
    )
    clean = bisect_run(store, application, bid, upto=3, verdict=Verdict.PASS, hours=3)
    no_build = bisect_run(
        store,
        application,
        bid,
        upto=1,
        verdict=Verdict.FAIL,
        hours=None,
        findings=[kernel_fault("build")],
    )
    infra = bisect_run(store, application, bid, upto=1, verdict=Verdict.INFRA, hours=None)
    in_flight = bisect_run(store, application, bid, upto=2, verdict=None, hours=0.5)

    advance_bisections(cfg, store)

    b = bisection(store, bid)
    assert b.state == BisectState.RUNNING
    assert steps(store, bid) == [
        (run, 4, Outcome.MATCHING, 2.0),
        (base, 0, Outcome.CLEAN, 10.0),
        (unrelated, 2, Outcome.UNRELATED, 1.5),
        (clean, 3, Outcome.CLEAN, 3.0),
        (no_build, 1, Outcome.UNTESTABLE, 0.0),
        (in_flight, 2, Outcome.CLEAN, 0.5),
    ]
    assert infra not in [s[0] for s in steps(store, bid)]
    assert len(b.posterior) == 5 and abs(sum(b.posterior) - 1) < 1e-9

    advance_bisections(cfg, store)  # nothing new: no new evidence, nothing queued
    assert len(steps(store, bid)) == 6
    with store.session() as session:
        assert session.scalars(select(Run).where(Run.state == RunState.QUEUED)).all() == []


def test_a_reboot_or_hang_without_a_captured_crash_is_unrelated_evidence_never_clean(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    """A host that rebooted during the soak (boot_id changed) with no crash on record
    did not run clean: its uptime must not count against the patches it carries. The
    finding is the one the lifecycle writes (reboot_finding), read by its cause."""
    run = failing_run(store, application)
    bid = request_bisection(store, run, hosts=["laptop"])
    rebooted = bisect_run(
        store, application, bid, upto=3, verdict=Verdict.FAIL, hours=1.0,
        findings=[reboot_finding("9d3e", "51aa")],
    )  # fmt: skip
    hung = bisect_run(
        store, application, bid, upto=2, verdict=Verdict.FAIL, hours=1.0,
        findings=[hang_finding("laptop", 40.0, 3, 3.0, 30.0)],
    )  # fmt: skip

    advance_bisections(cfg, store)

    recorded = {r: o for r, _, o, _ in steps(store, bid)}
    assert recorded[rebooted] == Outcome.UNRELATED
    assert recorded[hung] == Outcome.UNRELATED


def test_a_boot_failure_of_a_kernel_that_already_ran_its_load_is_not_untestable(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    """TCG under load can fail a boot ("IO-APIC + timer doesn't work!"): the failing
    kernel booted and crashed before, so a later boot failure must not make it
    untestable (the bisection would then wait forever to reproduce on it)."""
    run = failing_run(store, application)
    bid = request_bisection(store, run, hosts=["laptop"])
    flake = bisect_run(
        store,
        application,
        bid,
        upto=4,
        verdict=Verdict.FAIL,
        hours=None,
        findings=[kernel_fault("boot")],
    )
    never = bisect_run(
        store,
        application,
        bid,
        upto=2,
        verdict=Verdict.FAIL,
        hours=None,
        findings=[kernel_fault("boot")],
    )

    advance_bisections(cfg, store)

    recorded = {r: o for r, _, o, _ in steps(store, bid)}
    assert flake not in recorded
    assert recorded[never] == Outcome.UNTESTABLE
    with store.session() as session:
        queued = session.scalars(select(Run.upto).where(Run.state == RunState.QUEUED)).all()
    assert queued == [4]  # reproducing on the failing kernel goes on


def test_a_counter_regression_reads_counter_verdicts_and_crashes_say_nothing_of_a_pass(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    failed = [counter("nr_anon_partially_mapped")]
    run = add_run(
        store,
        application,
        kind=RunKind.PATCHED,
        upto=4,
        verdict=Verdict.FAIL,
        findings=failed,
    )
    bid = request_bisection(store, run, hosts=["laptop"])
    bad = bisect_run(store, application, bid, upto=2, verdict=Verdict.FAIL, findings=failed)
    good = bisect_run(store, application, bid, upto=1, verdict=Verdict.PASS)
    bisect_run(store, application, bid, upto=3, verdict=Verdict.FAIL, crashes=((OTHER, 0.5),))
    leaked_then_crashed = bisect_run(
        store,
        application,
        bid,
        upto=3,
        verdict=Verdict.FAIL,
        crashes=((OTHER, 0.5),),
        findings=failed,
    )
    bisect_run(store, application, bid, upto=3, verdict=None)  # busy: no free host

    advance_bisections(cfg, store)
    advance_bisections(cfg, store)  # counter evidence is recorded once only

    assert [(r, k, o) for r, k, o, _ in steps(store, bid)] == [
        (run, 4, Outcome.COUNTER_FAIL),
        (bad, 2, Outcome.COUNTER_FAIL),
        (good, 1, Outcome.COUNTER_PASS),
        (leaked_then_crashed, 3, Outcome.COUNTER_FAIL),  # the trend before the crash
    ]


def test_a_convincing_bisection_finishes_and_cancels_its_runs_in_flight(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    base = add_run(store, application, kind=RunKind.BASELINE, upto=0, verdict=Verdict.PASS, hours=2)
    run = failing_run(store, application, baseline=base)
    bid = request_bisection(store, run, hosts=["laptop"])
    for k, crash_at in ((4, 0.1), (3, 0.1), (3, 0.15)):
        bisect_run(
            store, application, bid, upto=k, verdict=Verdict.FAIL, crashes=((TITLE, crash_at),)
        )
    for host in ("laptop", "workstation"):
        bisect_run(store, application, bid, upto=2, verdict=Verdict.PASS, hours=2, host=host)
    queued = bisect_run(store, application, bid, upto=1, verdict=None, state=RunState.QUEUED)

    advance_bisections(cfg, store)

    b = bisection(store, bid)
    assert (b.state, b.culprit) == (BisectState.DONE, 3), b.result
    assert b.result["confidence"] >= 0.95 and b.result["reason"] == "patch 3 found"
    with store.session() as session:
        assert session.get(Run, queued).state == RunState.CANCELLED  # type: ignore[union-attr]


def test_a_bisection_that_cannot_start_is_cancelled_with_the_reason(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    run = failing_run(store, application)
    bid = request_bisection(store, run)
    with store.session() as session:
        session.execute(delete(AppliedCommit).where(AppliedCommit.index == 3))

    advance_bisections(cfg, store)

    b = bisection(store, bid)
    assert b.state == BisectState.CANCELLED
    assert "lacks the commits of patches [3]" in b.result["reason"]


def test_no_automatic_bisection_when_the_config_turns_it_off(
    bisect_toml: Path, store: Store, application: int
) -> None:
    bisect_toml.write_text(bisect_toml.read_text() + "auto = false\n")
    failing_run(store, application)

    advance_bisections(load_config(bisect_toml), store)

    with store.session() as session:
        assert session.scalars(select(Bisection)).all() == []


# -- queueing through a real Redis ----------------------------------------------------------


@pytest.fixture
def redis_cfg(cfg: FarmConfig, bisect_toml: Path, tmp_path: Path) -> Iterator[FarmConfig]:
    with LocalServices(bisect_toml, tmp_path / "logs") as stack:
        yield cfg.model_copy(update={"broker_url": stack.broker_url})


def test_a_failed_patched_run_gets_a_bisection_whose_runs_go_to_the_free_hosts(
    redis_cfg: FarmConfig, store: Store, application: int
) -> None:
    run = failing_run(store, application)

    advance_bisections(redis_cfg, store)  # auto-requested, started, planned, queued

    with store.session() as session:
        b = session.scalars(select(Bisection)).one()
        queued = session.scalars(select(Run).where(Run.bisection_id == b.id).order_by(Run.host))
        got = [(r.kind, r.host, r.upto, r.commit, r.load, r.soak_seconds) for r in queued]
    assert (b.run_id, b.requested_by, b.state) == (run, "auto", BisectState.RUNNING)
    # A host re-tests the failing kernel (the crash rate is still unknown) for the
    # longest step (0.2 h); the other gets the engine's next test (a re-test too, or a
    # kernel between, per Settings.reproduce_hosts), clamped to [0.05 h, 0.2 h].
    assert got[0] == (RunKind.BISECT, "laptop", 4, sha(4), "thp-split", 720.0)
    kind, host, kernel, commit, load, seconds = got[1]
    assert (kind, host, commit, load) == (RunKind.BISECT, "workstation", sha(kernel), "thp-split")
    assert 1 <= kernel <= 4 and 180.0 <= seconds <= 720.0

    advance_bisections(redis_cfg, store)  # both hosts busy now: nothing more
    with store.session() as session:
        assert len(session.scalars(select(Run).where(Run.bisection_id == b.id)).all()) == 2


# -- the command line ------------------------------------------------------------------------


def farm(farm_toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_CONFIG": str(farm_toml)}
    return subprocess.run(
        [sys.executable, "-m", "farm", *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.slow  # three farm processes
def test_farm_bisect_run_requests_a_bisection_and_refuses_unknown_hosts(
    bisect_toml: Path, store: Store, application: int
) -> None:
    run = failing_run(store, application)

    bad = farm(bisect_toml, "bisect", str(run), "--hosts", "laptop,nosuch")
    ok = farm(bisect_toml, "bisect", str(run), "--hosts", "laptop", "--max-hours", "3d", "--json")

    assert bad.returncode == 1 and "no host named 'nosuch'" in bad.stderr
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    b = bisection(store, data["id"])
    assert (b.run_id, b.hosts, b.max_hours, data["state"]) == (run, ["laptop"], 72.0, "requested")
    status = farm(bisect_toml, "bisect", "status", str(b.id))
    assert status.returncode == 0, status.stderr
    assert "[requested]" in status.stdout and "farm beat starts it" in status.stdout


def test_a_crash_without_a_recorded_uptime_is_timed_by_its_console_line(
    cfg: FarmConfig, store: Store, application: int
) -> None:
    run = failing_run(store, application)
    with store.session() as session:
        crash = session.scalars(select(Crash).where(Crash.run_id == run)).one()
        crash.uptime_seconds = None
        crash.report = "kernel BUG at ../src/fs/drop_caches.c:59!\ninvalid opcode: 0000 [#1] SMP\n"
        session.add_all(
            ConsoleLine(run_id=run, host="laptop", ts=1.0, line=text)
            for text in (
                "[    0.000000] Linux version 6.1.192+",
                "[   36.000000] kernel BUG at ../src/fs/drop_caches.c:59!",
            )
        )
    bid = request_bisection(store, run, hosts=["laptop"])
    bisect_run(store, application, bid, upto=4, verdict=None, hours=None, state=RunState.QUEUED)

    advance_bisections(cfg, store)

    assert steps(store, bid) == [(run, 4, Outcome.MATCHING, 0.01)]  # 36 s
    with store.session() as session:  # a re-test of the failing kernel is not pointless
        queued = session.scalars(select(Run).where(Run.bisection_id == bid)).one()
        assert queued.state == RunState.QUEUED
