# SPDX-License-Identifier: Apache-2.0
"""Bisections driven for real: requests in, bisect runs out, their evidence back.

``request_bisection`` writes a REQUESTED row (the API's alerts do the same).
``advance_bisections`` runs once per reconciler tick (Celery beat) and, for each open
bisection: starts it (REQUESTED -> RUNNING), feeds the engine what its runs showed,
cancels runs the evidence made pointless, names the culprit when sure (or at the
budget) and otherwise queues a test on every free host. Everything is read back
from the database each tick, so the step is idempotent and a restart resumes it.

Evidence per run (kernel = ``run.upto``, one boot per run, uptime since boot):

- crash regression: a crash whose title or alternative title is the regression is
  MATCHING; another crash, a hang or a reboot is UNRELATED; a run that soaked without
  either is CLEAN for its uptime (PASS, a counter failure, a cancelled run);
- counter regression: the counter among the run's counter failures is COUNTER_FAIL
  (its trend before a crash counts), a run that quiesced without it COUNTER_PASS; a
  run cut short by a crash or hang without it says nothing;
- a run that failed before its load started (build or boot, the kernel's fault) is
  UNTESTABLE, and so is a kernel whose runs ended INFRA without soaking twice; other
  INFRA runs are ignored;
- a run in flight reports its uptime so far as CLEAN, each time it doubles.

The failing run itself is the first MATCHING evidence, and the baseline its verdict
was judged against (or the newest passed baseline on its host) the base's clean one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.bisect.engine import Engine, Evidence, FreeHost, InFlight, Outcome, Settings
from farm.bisect.model import Prior
from farm.bisect.priors import weights_from_stack
from farm.config import FarmConfig
from farm.detect.crash import Crash as FoundCrash
from farm.detect.crash import kind_of
from farm.ending import Cause, Verdict
from farm.errors import UserError
from farm.scheduler import bisect_store as persist
from farm.scheduler import notifying
from farm.scheduler.verdict import baseline_for
from farm.store import Store
from farm.store.base import as_utc, utcnow
from farm.store.bisect import Bisection, BisectState
from farm.store.runs import TERMINAL, Crash, Run, RunKind, RunState
from farm.store.samples import ConsoleLine, Sample
from farm.store.series import Application, Series

log = logging.getLogger(__name__)

OPEN = (BisectState.REQUESTED, BisectState.RUNNING)
INFRA_UNTESTABLE = 2  # INFRA runs without a soak after which a kernel is skipped
GROWTH = 2.0  # an in-flight uptime is recorded again each time it doubles
# Findings after which a run says nothing of a counter it did not fail: it never quiesced.
CUT_SHORT = frozenset(Cause) - {Cause.COUNTER, Cause.TAINT, Cause.SELFTEST}
_STAMP = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\]")  # a console line's kernel timestamp


# -- requests ------------------------------------------------------------------------


def _crash_matches(row: Crash, regression: str) -> bool:
    found = FoundCrash(
        title=row.title,
        kind=kind_of(row.title),
        corrupted=row.corrupted,
        start_line=0,
        report=row.report,
        signature=row.signature,
        alt_titles=list(row.alt_titles),
    )
    return found.matches(regression)


def _crashes(session: Session, run_id: int) -> list[Crash]:
    return list(
        session.scalars(
            select(Crash).where(Crash.run_id == run_id).order_by(Crash.seen_at, Crash.id)
        )
    )


def regression_of(session: Session, run: Run, wanted: str | None = None) -> tuple[str, str]:
    """(regression, crash | counter) to bisect on ``run``: ``wanted`` if the run shows
    it, else its first failed counter, else its first crash title. A counter first:
    it fails on every run of a bad kernel, so its bisection is short and sure, while a
    crash comes at random and each step must soak long enough to trust a clean run.
    ``farm bisect RUN --regression TITLE`` hunts the crash."""
    crashes = _crashes(session, run.id)
    counters = run.ending.failed_counters
    if wanted is not None:
        if any(_crash_matches(c, wanted) for c in crashes):
            return wanted, "crash"
        if wanted in counters:
            return wanted, "counter"
        shown = [c.title for c in crashes] + counters
        raise UserError(
            f"run {run.id} shows no crash or counter failure named {wanted!r}"
            f" (it shows: {'; '.join(shown) or 'nothing'})",
            hint=f"farm bisect {run.id} without --regression bisects its first failure",
        )
    if counters:
        return counters[0], "counter"
    if crashes:
        return crashes[0].title, "crash"
    raise UserError(
        f"run {run.id} has no crash and no failed counter to bisect"
        f" (verdict {run.verdict or 'none yet'})",
        hint="bisect a run that ended FAIL with a crash or a counter failure",
    )


@dataclass(frozen=True)
class Requested:
    """A bisection request's answer: the bisection hunting the regression, and
    whether this request created it (False: one existed already)."""

    bisection_id: int
    new: bool
    regression: str
    kind: str


def request_bisection(store: Store, run_id: int, **request: Any) -> int:
    """A REQUESTED bisection of ``run_id``'s regression (the existing one if any)."""
    with store.session() as session:
        return request_in(session, run_id, **request).bisection_id


def request_in(
    session: Session,
    run_id: int,
    *,
    regression: str | None = None,
    confidence: float = 0.95,
    hosts: list[str] | None = None,
    max_hours: float | None = None,
    requested_by: str = "cli",
) -> Requested:
    """The one way a bisection is requested (the CLI, the beat and the alert webhook):
    only a patched run of an applied series that ended FAIL showing ``regression`` (a
    crash title or a failed counter; its first failure when None) can be bisected, and
    hosts that failed alike share one bisection. Works in the caller's session."""
    if not 0.5 < confidence < 1.0:
        raise UserError(f"confidence {confidence:g} is not between 0.5 and 1", hint="0.95")
    if max_hours is not None and max_hours <= 0:
        raise UserError(f"max hours {max_hours:g} is not positive", hint="--max-hours 72")
    run = session.get(Run, run_id)
    if run is None:
        raise UserError(f"no run {run_id}", hint="farm status lists the runs")
    if run.application_id is None or run.upto < 1:
        raise UserError(
            f"run {run_id} is not of an applied series (upto {run.upto}): nothing to bisect",
            hint="bisect a patched run queued by farm submit",
        )
    if run.verdict != Verdict.FAIL:
        raise UserError(
            f"run {run_id} has not ended FAIL ({run.state}, verdict {run.verdict or 'none yet'})",
            hint="a bisection starts from a finished run that failed",
        )
    title, kind = regression_of(session, run, regression)
    existing = _existing(session, run_id, title) or _hunted(session, run, title)
    if existing is not None:
        return Requested(existing, False, title, kind)
    b = Bisection(
        run_id=run_id,
        series_id=run.series_id,
        regression=title,
        regression_kind=kind,
        state=BisectState.REQUESTED,
        confidence=confidence,
        max_hours=max_hours,
        hosts=list(hosts or []),
        requested_by=requested_by,
    )
    try:
        with session.begin_nested():
            session.add(b)
            session.flush()
    except IntegrityError:  # requested concurrently (an alert, another CLI)
        found = _existing(session, run_id, title)
        if found is None:
            raise
        return Requested(found, False, title, kind)
    return Requested(b.id, True, title, kind)


def _existing(session: Session, run_id: int, regression: str) -> int | None:
    return session.scalar(
        select(Bisection.id).where(Bisection.run_id == run_id, Bisection.regression == regression)
    )


def _hunted(session: Session, run: Run, regression: str) -> int | None:
    """A live bisection of the same regression on the same applied series: when both
    hosts fail the same way, one bisection hunts it with the evidence of both."""
    return session.scalar(
        select(Bisection.id)
        .join(Run, Bisection.run_id == Run.id)
        .where(
            Run.application_id == run.application_id,
            Run.upto == run.upto,
            Bisection.regression == regression,
            Bisection.state != BisectState.CANCELLED,
        )
        .order_by(Bisection.id)
        .limit(1)
    )


def _auto_request(config: FarmConfig, store: Store) -> None:
    """A bisection for every patched run that ended FAIL and has none yet."""
    with store.session() as session:
        candidates = session.scalars(
            select(Run.id)
            .outerjoin(Bisection, Bisection.run_id == Run.id)
            .where(
                Run.kind == RunKind.PATCHED,
                Run.verdict == Verdict.FAIL,
                Run.application_id.is_not(None),
                Bisection.id.is_(None),
            )
        ).all()
    for run_id in candidates:
        try:
            bid = request_bisection(
                store, run_id, confidence=config.bisect.confidence, requested_by="auto"
            )
        except UserError as exc:  # a hang or taint only: nothing a bisection can hunt
            log.debug("run %s: no automatic bisection: %s", run_id, exc.message)
        else:
            log.debug("run %s ended FAIL: bisection %s hunts it", run_id, bid)


# -- evidence ------------------------------------------------------------------------


def _uptime_hours(session: Session, run: Run) -> float:
    """Kernel uptime at the run's last sample (since boot, like crash times), or the
    soak time when there are no samples."""
    last = session.scalar(select(func.max(Sample.uptime)).where(Sample.run_id == run.id))
    if last is not None:
        return float(last) / 3600.0
    if run.load_started_at is None:
        return 0.0
    end = as_utc(run.ended_at) if run.ended_at else utcnow()
    return max(0.0, (end - as_utc(run.load_started_at)).total_seconds()) / 3600.0


def _crash_hours(session: Session, run: Run, crash: Crash) -> float:
    """The kernel's uptime at the crash: recorded, else the timestamp of the report's
    first line on the console, else the run's last known uptime."""
    if crash.uptime_seconds is not None:
        return crash.uptime_seconds / 3600.0
    first = crash.report.splitlines()[0].strip() if crash.report.strip() else ""
    line = first and session.scalar(
        select(ConsoleLine.line)
        .where(ConsoleLine.run_id == run.id, ConsoleLine.line.contains(first, autoescape=True))
        .order_by(ConsoleLine.id)
        .limit(1)
    )
    stamp = _STAMP.match(line) if line else None
    return float(stamp.group(1)) / 3600.0 if stamp else _uptime_hours(session, run)


def evidence_of(session: Session, run: Run, b: Bisection, kernel: int) -> Evidence | None:
    """What a finished run says about ``b``'s regression; None when nothing."""

    def ev(outcome: Outcome, hours: float) -> Evidence:
        return Evidence(kernel, run.host, f"run-{run.id}", hours, outcome, run_id=run.id)

    soaked = run.load_started_at is not None
    crashes = _crashes(session, run.id)
    if run.state == RunState.CANCELLED or run.verdict == Verdict.INFRA:
        hours = _uptime_hours(session, run)
        return ev(Outcome.CLEAN, hours) if soaked and b.regression_kind == "crash" else None
    if run.verdict is None:
        return None
    if run.verdict == Verdict.FAIL and not soaked and not crashes:
        return ev(Outcome.UNTESTABLE, 0.0)  # did not build or boot: the kernel's own fault
    hours = _uptime_hours(session, run)
    if b.regression_kind == "counter":
        if b.regression in run.ending.failed_counters:
            return ev(Outcome.COUNTER_FAIL, hours)  # a trend seen before a crash counts
        if crashes or run.ending.has(*CUT_SHORT):
            return None  # a run cut short by a crash or hang never quiesced: no pass
        return ev(Outcome.COUNTER_PASS, hours)
    for crash in crashes:
        if _crash_matches(crash, b.regression):
            return ev(Outcome.MATCHING, _crash_hours(session, run, crash))
    if crashes:
        return ev(Outcome.UNRELATED, _crash_hours(session, run, crashes[0]))
    if run.ending.has(Cause.HANG, Cause.REBOOT):
        return ev(Outcome.UNRELATED, hours)
    return ev(Outcome.CLEAN, hours)


def _base_run(session: Session, run: Run) -> Run | None:
    """The baseline ``run``'s verdict compared against, or the newest passed one."""
    ref = run.ending.baseline_run
    base = session.get(Run, ref) if ref is not None else None
    return base or baseline_for(session, run)


def _newer(old: Evidence | None, new: Evidence, final: bool) -> bool:
    """Whether ``new`` adds to what the engine holds for the run (counter and
    untestable evidence count every time they are recorded: once only)."""
    if old is None:
        return True
    if old.outcome is not Outcome.CLEAN:
        return False
    if new.outcome is not Outcome.CLEAN:
        return True
    grow = 1.0 if final else GROWTH
    return new.uptime_hours > old.uptime_hours * grow


@dataclass(frozen=True)
class BisectRun:
    """A test a bisection wants: soak kernel ``upto`` on ``host``."""

    host: str
    upto: int
    commit: str
    soak_seconds: float
    load: str
    series_id: int | None
    application_id: int | None


@dataclass
class BisectWork:
    """What one bisection's tick decided, carried out after its transaction commits
    (by farm.scheduler.api.carry_out): runs to cancel and runs to queue."""

    bisection_id: int
    cancel: list[int] = field(default_factory=list)
    queue: list[BisectRun] = field(default_factory=list)


def _settings(config: FarmConfig, session: Session, b: Bisection, run: Run) -> Settings:
    cfg = config.bisect
    patches = _patch_weights(session, run)
    counter = min(max(2.0, cfg.min_step_hours), cfg.max_step_hours)
    return Settings(
        confidence=b.confidence,
        overhead_hours=cfg.step_overhead_hours,
        durations=cfg.durations(),
        counter_hours=counter,
        kind=b.regression_kind,
        prior=Prior(scale_hours=cfg.prior_scale_hours, patch_weights=patches),
    )


def _patch_weights(session: Session, run: Run) -> tuple[float, ...]:
    """Stack-based prior weights: patches touching the crash's top frames first."""
    series = session.get(Series, run.series_id) if run.series_id else None
    crashes = _crashes(session, run.id)
    if series is None or not crashes or len(series.patches) < run.upto:
        return ()
    diffs = [p.raw.decode("utf-8", "replace") for p in series.patches[: run.upto]]
    return weights_from_stack(diffs, crashes[0].frames)


def _start(config: FarmConfig, session: Session, b: Bisection, run: Run) -> None:
    app = session.get(Application, run.application_id) if run.application_id else None
    if app is None or run.upto < 1:
        raise UserError(f"run {run.id} is not of an applied series: nothing to bisect")
    applied = {c.index for c in app.commits}
    missing = [k for k in range(1, run.upto + 1) if k not in applied]
    if missing:
        raise UserError(f"application {app.id} lacks the commits of patches {missing}")
    persist.start(
        session,
        run_id=run.id,
        patches=run.upto,
        regression=b.regression,
        regression_kind=b.regression_kind,
        series_id=run.series_id,
        settings=_settings(config, session, b, run),
        hosts=list(b.hosts),
        max_hours=b.max_hours or config.bisect.max_hours,
        requested=b,
    )
    log.info("bisection %s started: %s patches, %r", b.id, run.upto, b.regression)


def _submitted_runs(session: Session, run: Run) -> list[tuple[Run, int]]:
    """(run, kernel) of the submission that failed: the failing run, the patched runs
    of the same applied series on the other hosts (one bisection hunts for both, so it
    pools their evidence), and the baseline each was judged against."""
    twins = session.scalars(
        select(Run)
        .where(
            Run.kind == RunKind.PATCHED,
            Run.application_id == run.application_id,
            Run.upto == run.upto,
            Run.id != run.id,
        )
        .order_by(Run.id)
    )
    patched = [run, *twins]
    bases = {b.id: b for r in patched if (b := _base_run(session, r)) is not None}
    return [(r, r.upto) for r in patched] + [(b, 0) for b in bases.values()]


def _record_evidence(session: Session, b: Bisection, run: Run) -> tuple[Engine, list[InFlight]]:
    """Feed the engine what is new since the last tick; the runs still in flight."""
    engine = persist.engine_of(b)
    held: dict[int, Evidence] = {e.run_id: e for e in engine.log if e.run_id is not None}
    runs = _submitted_runs(session, run) + [
        (r, r.upto)
        for r in session.scalars(select(Run).where(Run.bisection_id == b.id).order_by(Run.id))
    ]
    in_flight: list[InFlight] = []
    infra: dict[int, int] = {}
    # A kernel that has run its load boots: a later boot failure of it is the host's
    # flake (TCG's timer check under load, a lost disk), never grounds to skip it.
    booted = {kernel for r, kernel in runs if r.load_started_at is not None}
    for r, kernel in runs:
        if r.state not in TERMINAL:
            hours = _uptime_hours(session, r)
            planned = max(hours, r.soak_seconds / 3600.0)
            in_flight.append(InFlight(r.host, kernel, f"run-{r.id}", hours, planned, r.id))
            new = Evidence(kernel, r.host, f"run-{r.id}", hours, Outcome.CLEAN, r.id)
            final = False
        else:
            if r.verdict == Verdict.INFRA and r.load_started_at is None:
                infra[kernel] = infra.get(kernel, 0) + 1
            found = evidence_of(session, r, b, kernel)
            if found is None or (found.outcome is Outcome.UNTESTABLE and kernel in booted):
                continue
            new, final = found, True
        if b.regression_kind == "crash" and (final or new.uptime_hours > 0):
            if _newer(held.get(r.id), new, final):
                engine = persist.record(session, b, new)
                held[r.id] = new
        elif final and r.id not in held:
            engine = persist.record(session, b, new)
            held[r.id] = new
    for kernel, count in infra.items():
        if count >= INFRA_UNTESTABLE and kernel not in engine.untestable | booted:
            ev = Evidence(kernel, "-", f"infra-{kernel}", 0.0, Outcome.UNTESTABLE)
            engine = persist.record(session, b, ev)
    return engine, in_flight


def _free_hosts(config: FarmConfig, session: Session, b: Bisection) -> list[FreeHost]:
    known = {h.name for h in config.hosts}
    wanted = list(b.hosts) or sorted(known)
    busy = set(session.scalars(select(Run.host).where(Run.state.not_in(TERMINAL))).all())
    for name in wanted:
        if name not in known:
            log.warning("bisection %s: host %r is not in the inventory; skipped", b.id, name)
    return [FreeHost(h) for h in wanted if h in known and h not in busy]


def _budget_exhausted(b: Bisection) -> bool:
    if b.max_hours is None:
        return False
    return (utcnow() - as_utc(b.created_at)).total_seconds() / 3600.0 >= b.max_hours


def _tick(config: FarmConfig, session: Session, b: Bisection) -> BisectWork:
    run = session.get(Run, b.run_id)
    if run is None:
        raise UserError(f"the failing run {b.run_id} of bisection {b.id} is gone")
    if b.state == BisectState.REQUESTED:
        _start(config, session, b, run)
    engine, in_flight = _record_evidence(session, b, run)
    ours = [r for r in in_flight if _is_bisect_run(session, r, b)]
    decision = engine.decide(budget_exhausted=_budget_exhausted(b))
    if decision.done:
        persist.finish(session, b, decision)
        log.info("bisection %s done: %s", b.id, decision.reason)
        notifying.bisection_done(session, config, b, decision)
        return BisectWork(b.id, [r.run_id for r in ours if r.run_id is not None])
    stop = [r for r in engine.pointless(ours) if not _reproducing(engine, r.kernel)]
    live = [r for r in in_flight if r not in stop]
    tests = engine.plan(_free_hosts(config, session, b), live)
    app = session.get(Application, run.application_id)
    if app is None:
        raise UserError(f"the application of run {run.id} is gone")
    cfg = config.bisect
    queue = [
        BisectRun(
            host=t.host,
            upto=t.kernel,
            commit=app.commit_for(t.kernel),
            soak_seconds=min(max(t.hours, cfg.min_step_hours), cfg.max_step_hours) * 3600.0,
            load=run.load,
            series_id=run.series_id,
            application_id=run.application_id,
        )
        for t in tests
        if t.kernel not in engine.untestable
    ]
    return BisectWork(b.id, [r.run_id for r in stop if r.run_id is not None], queue)


def _reproducing(engine: Engine, kernel: int) -> bool:
    """Re-tests of the failing kernel are what the engine asks for until it has seen the
    crash there ``reproduce`` times, however settled the kernel looks."""
    fk = engine.failing_kernel
    return kernel == fk and engine.matching(fk) < engine.settings.reproduce


def _is_bisect_run(session: Session, flight: InFlight, b: Bisection) -> bool:
    r = session.get(Run, flight.run_id)
    return r is not None and r.bisection_id == b.id


def open_bisections(config: FarmConfig, store: Store) -> list[int]:
    """The bisections a tick looks at (auto-requested ones first added)."""
    if config.bisect.auto:
        _auto_request(config, store)
    with store.session() as session:
        return list(session.scalars(select(Bisection.id).where(Bisection.state.in_(OPEN))))


def tick_bisection(config: FarmConfig, store: Store, bid: int) -> BisectWork | None:
    """One reconciler tick of one bisection: what it wants cancelled and queued, None
    when it is closed. Deciding only: the caller carries it out."""
    try:
        with store.session() as session:
            b = session.get(Bisection, bid)
            if b is None or b.state not in OPEN:
                return None
            return _tick(config, session, b)
    except UserError as exc:
        _give_up(store, bid, exc.message)
    except Exception:  # a bug in one bisection must not stall the others: logged, retried
        log.exception("bisection %s: tick failed; retried at the next one", bid)
    return None


def tick_bisections(config: FarmConfig, store: Store) -> list[BisectWork]:
    """Every open bisection ticked once, deciding only, for callers that carry out the
    work themselves; the beat goes through ``api.advance_bisections``, which holds each
    bisection while it is ticked."""
    ticked = (tick_bisection(config, store, bid) for bid in open_bisections(config, store))
    return [work for work in ticked if work is not None]


def _give_up(store: Store, bid: int, reason: str) -> None:
    """A bisection that cannot proceed is cancelled with the reason, not retried forever."""
    log.warning("bisection %s cancelled: %s", bid, reason)
    with store.session() as session:
        b = session.get(Bisection, bid)
        if b is not None:
            b.state = BisectState.CANCELLED
            b.result = {**b.result, "reason": reason}


# -- waiting -------------------------------------------------------------------------


def wait_for_bisection(
    store: Store,
    bisection_id: int,
    timeout: float,
    progress: Callable[[Bisection], None] | None = None,
    poll: float = 2.0,
) -> Bisection:
    """Poll until the bisection is DONE or CANCELLED (or ``timeout`` seconds passed);
    the row, detached. ``progress`` sees every poll's row."""
    deadline = time.monotonic() + timeout
    while True:
        with store.session() as session:
            b = session.get(Bisection, bisection_id)
            if b is None:
                raise UserError(f"no bisection {bisection_id}", hint="farm bisect status ID")
            session.expunge(b)
        if progress is not None:
            progress(b)
        if b.state not in OPEN or time.monotonic() >= deadline:
            return b
        time.sleep(poll)
