# SPDX-License-Identifier: Apache-2.0
"""What each page of the web view shows, read from the store: the queries behind the
pages, as the JSON views in farm.api.views hold theirs. Each function takes a session
and returns plain values for a template; none writes."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from farm.bisect import forecast
from farm.config import FarmConfig
from farm.loads import ALWAYS_WATCHED, watched_counters
from farm.report.model import ReportInput
from farm.scheduler import bisect_store
from farm.scheduler.health import history
from farm.scheduler.report_input import build_input
from farm.soak.sampler import Reading
from farm.store.base import as_utc
from farm.store.bisect import Bisection, BisectState, BisectStep
from farm.store.hosts import Health, HostAlert, HostHealthChange
from farm.store.hosts import states as host_healths
from farm.store.runs import TERMINAL, Crash, Run, RunKind, RunState, baseline_of
from farm.store.samples import (
    ConsoleLine,
    HostState,
    KeyCache,
    RunProgress,
    Sample,
    decode,
    series_of,
)
from farm.store.series import Patch, Series

PAGE = 100  # rows per page of a list
CONSOLE_TAIL = 200  # console lines a run page starts with
MAX_POINTS = 400  # points per plotted line: a 12 h soak has 4320 samples
FORECAST_ROLLOUTS = 8  # the page answers in a second; `farm bisect status` does 24
FORECAST_STEPS = 100  # each rollout simulates at most this many soaks (~1 s in all)


@dataclass(frozen=True)
class Page:
    """Where a list is: rows ``offset``..``offset + len(rows)`` of ``total``."""

    offset: int
    total: int
    size: int = PAGE

    @property
    def previous(self) -> int | None:
        return max(self.offset - self.size, 0) if self.offset > 0 else None

    @property
    def next(self) -> int | None:
        return self.offset + self.size if self.offset + self.size < self.total else None


@dataclass(frozen=True)
class SeriesRow:
    series: Series
    runs: int
    failed: int
    active: int


def series_list(db: Session, offset: int) -> tuple[list[SeriesRow], Page]:
    """Newest series first, with how many runs each has, failed and still going."""
    counts = (
        select(
            Run.series_id,
            func.count().label("runs"),
            func.count().filter(Run.verdict == "FAIL").label("failed"),
            func.count().filter(Run.state.not_in(TERMINAL)).label("active"),
        )
        .group_by(Run.series_id)
        .subquery()
    )
    query = (
        select(Series, counts.c.runs, counts.c.failed, counts.c.active)
        .outerjoin(counts, counts.c.series_id == Series.id)
        .order_by(Series.id.desc())
        .limit(PAGE)
        .offset(offset)
    )
    rows = [
        SeriesRow(s, runs or 0, failed or 0, active or 0)
        for s, runs, failed, active in db.execute(query)
    ]
    total = db.scalar(select(func.count()).select_from(Series)) or 0
    return rows, Page(offset, total)


@dataclass(frozen=True)
class RunFilter:
    state: RunState | None = None
    host: str | None = None
    series: int | None = None

    def where(self, query: Select[Any]) -> Select[Any]:
        conditions: list[ColumnElement[bool]] = []
        if self.state is not None:
            conditions.append(Run.state == self.state)
        if self.host is not None:
            conditions.append(Run.host == self.host)
        if self.series is not None:
            conditions.append(Run.series_id == self.series)
        return query.where(*conditions)


def runs_list(db: Session, wanted: RunFilter, offset: int) -> tuple[list[Run], Page]:
    """Newest runs first, one page of them."""
    rows = db.scalars(
        wanted.where(select(Run)).order_by(Run.id.desc()).limit(PAGE).offset(offset)
    ).all()
    total = db.scalar(wanted.where(select(func.count()).select_from(Run))) or 0
    return list(rows), Page(offset, total)


def lore_link(lore_url: str, message_id: str | None) -> str | None:
    """The archive's page of a message, e.g. https://lore.kernel.org/r/<id>."""
    return f"{lore_url}{message_id.strip('<>')}" if message_id else None


@dataclass(frozen=True)
class SeriesPage:
    series: Series
    patches: list[Patch]
    runs: list[Run]
    bisections: list[Bisection]


def series_page(db: Session, ident: int) -> SeriesPage | None:
    series = db.get(Series, ident)
    if series is None:
        return None
    runs = db.scalars(select(Run).where(Run.series_id == ident).order_by(Run.id.desc()).limit(PAGE))
    bisections = db.scalars(
        select(Bisection).where(Bisection.series_id == ident).order_by(Bisection.id.desc())
    )
    return SeriesPage(series, list(series.patches), list(runs), list(bisections))


@dataclass(frozen=True)
class Line:
    """One plotted line: (hours since the run's first sample, value)."""

    label: str
    points: list[tuple[float, float]]
    baseline: bool = False


@dataclass(frozen=True)
class CounterPlot:
    counter: str
    lines: list[Line]


@dataclass(frozen=True)
class RunPage:
    run: Run
    series: Series | None
    crashes: list[Crash]
    console: list[ConsoleLine]
    baseline: Run | None
    plots: list[CounterPlot]
    bisections: list[Bisection]
    samples: int
    cancel_requested: bool
    actions: list[str] = field(default_factory=list)  # what an admin may do to it


def run_page(db: Session, config: FarmConfig | None, ident: int) -> RunPage | None:
    run = db.get(Run, ident)
    if run is None:
        return None
    baseline = baseline_of(db, run)
    counters = (
        watched_counters(config, run.load, run.ending.failed_counters)
        if config
        else [*run.ending.failed_counters, *ALWAYS_WATCHED]
    )
    keys = KeyCache()
    compared = [(r, _readings(db, keys, r.id)) for r in (run, baseline) if r is not None]
    plots = [
        CounterPlot(
            name,
            [
                Line(_kernel_label(r), _hours(series_of(rs, name)), r is baseline)
                for r, rs in compared
            ],
        )
        for name in counters
    ]
    bisections = list(
        db.scalars(select(Bisection).where(Bisection.run_id == ident).order_by(Bisection.id))
    )
    samples = db.scalar(select(func.count()).select_from(Sample).where(Sample.run_id == ident))
    progress = db.get(RunProgress, ident)
    stopping = bool(progress and progress.cancel_requested)
    return RunPage(
        run=run,
        series=db.get(Series, run.series_id) if run.series_id is not None else None,
        crashes=list(db.scalars(select(Crash).where(Crash.run_id == ident).order_by(Crash.id))),
        console=console_tail(db, ident),
        baseline=baseline,
        plots=[p for p in plots if any(line.points for line in p.lines)],
        bisections=bisections,
        samples=samples or 0,
        cancel_requested=stopping,
        actions=_run_actions(run, stopping, bisected=bool(bisections)),
    )


def _run_actions(run: Run, stopping: bool, bisected: bool) -> list[str]:
    actions = [] if run.state in TERMINAL or stopping else ["cancel"]
    failed = run.state == RunState.DONE and run.verdict == "FAIL"
    if failed and run.kind == RunKind.PATCHED and not bisected:
        actions.append("bisect")
    return actions


def console_tail(db: Session, run_id: int) -> list[ConsoleLine]:
    """The run's newest console lines, oldest first."""
    query = (
        select(ConsoleLine)
        .where(ConsoleLine.run_id == run_id)
        .order_by(ConsoleLine.id.desc())
        .limit(CONSOLE_TAIL)
    )
    return list(reversed(db.scalars(query).all()))


def _readings(db: Session, keys: KeyCache, run_id: int) -> list[Reading]:
    """At most MAX_POINTS of the run's samples, evenly spread, oldest first: only those
    are decoded (a 12 h soak has 4320 samples of ~200 fields)."""
    ids = db.scalars(select(Sample.id).where(Sample.run_id == run_id).order_by(Sample.ts)).all()
    step = max(1, -(-len(ids) // MAX_POINTS))
    wanted = [*ids[::step], *ids[-1:]] if ids else []
    rows = db.scalars(select(Sample).where(Sample.id.in_(wanted)).order_by(Sample.ts))
    return [decode(keys, db, row) for row in rows]


def _hours(points: list[tuple[float, int]]) -> list[tuple[float, float]]:
    if not points:
        return []
    start = points[0][0]
    return [((ts - start) / 3600.0, float(value)) for ts, value in points]


def _kernel_label(run: Run) -> str:
    kernel = "base" if run.upto == 0 else f"+{run.upto:02d}"
    return f"run {run.id} {run.kind.value} {kernel}"


@dataclass(frozen=True)
class PatchOdds:
    index: int  # 0: no culprit among the patches
    subject: str
    probability: float


@dataclass(frozen=True)
class BisectionPage:
    bisection: Bisection
    series: Series | None
    odds: list[PatchOdds]
    leader: PatchOdds | None
    steps: list[BisectStep]
    runs: list[Run]
    hours_left: forecast.Forecast | None
    forecast_cap: float  # hours simulated at most: a forecast this long means "longer"
    report: ReportInput | None


def bisection_page(db: Session, ident: int) -> BisectionPage | None:
    b = db.get(Bisection, ident)
    if b is None:
        return None
    series = db.get(Series, b.series_id) if b.series_id is not None else None
    subjects = {p.index: p.subject for p in series.patches} if series else {}
    *patches, none = b.posterior or [0.0]
    odds = [PatchOdds(i, subjects.get(i, ""), p) for i, p in enumerate(patches, start=1)]
    odds.append(PatchOdds(0, "no culprit among the patches", none))
    steps = db.scalars(
        select(BisectStep).where(BisectStep.bisection_id == ident).order_by(BisectStep.seq)
    )
    fed = select(BisectStep.run_id).where(BisectStep.bisection_id == ident)
    runs = db.scalars(
        select(Run)
        .where((Run.bisection_id == ident) | Run.id.in_(fed) | (Run.id == b.run_id))
        .order_by(Run.id)
    )
    started = bool(b.engine_state)
    left, cap = _hours_left(b) if started else (None, 0.0)
    return BisectionPage(
        bisection=b,
        series=series,
        odds=odds,
        leader=max(odds[:-1], key=lambda o: o.probability)
        if len(odds) > 1 and b.posterior
        else None,
        steps=list(steps),
        runs=list(runs),
        hours_left=left,
        forecast_cap=cap,
        report=build_input(db, ident) if started else None,
    )


def _hours_left(b: Bisection) -> tuple[forecast.Forecast | None, float]:
    """Simulated forward from the posterior, for at most FORECAST_STEPS soaks or the
    budget left; a counter's bisection is not forecast (the simulated farm only
    crashes)."""
    if b.state != BisectState.RUNNING or b.regression_kind != "crash":
        return None, 0.0
    engine = bisect_store.engine_of(b)
    hosts = len(b.hosts) or len({ev.host for ev in engine.log})
    step = engine.settings.overhead_hours + max(engine.settings.durations)
    cap = FORECAST_STEPS * step / max(hosts, 1)
    if b.max_hours is not None:
        spent = (dt.datetime.now(dt.UTC) - as_utc(b.created_at)).total_seconds() / 3600
        cap = min(cap, max(b.max_hours - spent, 1e-3))
    return forecast.hours_left(engine, hosts, FORECAST_ROLLOUTS, max_hours=cap), cap


def bisections_list(db: Session, offset: int) -> tuple[list[Bisection], Page]:
    rows = db.scalars(select(Bisection).order_by(Bisection.id.desc()).limit(PAGE).offset(offset))
    total = db.scalar(select(func.count()).select_from(Bisection)) or 0
    return list(rows), Page(offset, total)


@dataclass(frozen=True)
class HostRow:
    name: str
    kind: str
    health: Health
    up: bool
    last_contact: float | None  # seconds ago
    run: Run | None


def hosts_list(db: Session, config: FarmConfig | None) -> list[HostRow]:
    """Every host of the inventory (and any the store knows that left it)."""
    now = time.time()
    states = {h.host: h for h in db.scalars(select(HostState))}
    healths = host_healths(db)
    kinds = {h.name: h.kind for h in config.hosts} if config else {}
    stale = 3 * (config.scheduler.sample_interval if config else 10.0)
    names = list(dict.fromkeys([*kinds, *sorted(states), *sorted(healths)]))
    current = _current_runs(db, names)
    rows = []
    for name in names:
        state = states.get(name)
        last_ok = state.last_ok if state else None
        rows.append(
            HostRow(
                name=name,
                kind=kinds.get(name, "not in farm.toml"),
                health=healths.get(name, Health.UNKNOWN),
                up=bool(state and state.up and last_ok and now - last_ok <= stale),
                last_contact=round(now - last_ok, 1) if last_ok else None,
                run=current.get(name),
            )
        )
    return rows


def _current_runs(db: Session, hosts: Sequence[str]) -> dict[str, Run]:
    """The active run of each host (the newest, when several are queued)."""
    runs = db.scalars(
        select(Run).where(Run.host.in_(hosts), Run.state.not_in(TERMINAL)).order_by(Run.id)
    )
    found: dict[str, Run] = {}
    for run in runs:
        if run.state != RunState.QUEUED or run.host not in found:
            found[run.host] = run
    return found


@dataclass(frozen=True)
class HostPage:
    row: HostRow
    history: list[HostHealthChange]
    alerts: list[HostAlert]
    runs: list[Run]


def host_page(db: Session, config: FarmConfig | None, name: str) -> HostPage | None:
    row = next((h for h in hosts_list(db, config) if h.name == name), None)
    if row is None:
        return None
    alerts = db.scalars(
        select(HostAlert).where(HostAlert.host == name).order_by(HostAlert.id.desc()).limit(PAGE)
    )
    runs = db.scalars(select(Run).where(Run.host == name).order_by(Run.id.desc()).limit(20))
    return HostPage(row, history(db, name, limit=PAGE), list(alerts), list(runs))


def age(when: dt.datetime | None) -> str:
    """'3 min ago' and the like, for list columns."""
    if when is None:
        return ""
    seconds = (dt.datetime.now(dt.UTC) - as_utc(when)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"
