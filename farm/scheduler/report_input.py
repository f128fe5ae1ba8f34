# SPDX-License-Identifier: Apache-2.0
"""Build a ReportInput from the store: bisection, its steps, the series, runs and crashes.

Counter plots come from the samples table (farm.store.samples): for a counter
regression, every run of the bisection contributes the counter's points over its run.
"""

from __future__ import annotations

import shlex

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.bisect.engine import Evidence
from farm.errors import UserError
from farm.report.model import CounterSeries, PatchRef, ReportInput, TestRun
from farm.scheduler import bisect_store as persist
from farm.store.bisect import Bisection, BisectStep
from farm.store.runs import Crash, Run
from farm.store.samples import run_readings, series_of
from farm.store.series import Patch, Series
from farm.units import format_duration


def _patch_ref(p: Patch) -> PatchRef:
    return PatchRef(
        index=p.index,
        subject=p.subject,
        full_subject=p.full_subject,
        message_id=p.message_id,
        references=p.references,
        author=p.author,
        to=p.to,
        cc=p.cc,
    )


def _stack(session: Session, b: Bisection) -> list[str]:
    crashes = session.scalars(select(Crash).where(Crash.run_id == b.run_id).order_by(Crash.id))
    for crash in crashes:
        if b.regression in (crash.title, *crash.alt_titles):
            return crash.frames[:8]
    return []


def _counters(session: Session, b: Bisection) -> list[CounterSeries]:
    runs = session.scalars(select(Run).where(Run.bisection_id == b.id).order_by(Run.id))
    out = []
    for run in runs:
        points = series_of(run_readings(session, run.id), b.regression)
        if points:
            t0 = points[0][0]
            hours = [((ts - t0) / 3600.0, float(v)) for ts, v in points]
            out.append(CounterSeries(kernel=run.upto, host=run.host, points=hours))
    return out


def _reproduce(series: Series | None, run: Run | None, culprit: int | None) -> list[str]:
    if series is None or culprit is None:
        return []
    hosts = f" --hosts {shlex.quote(run.host)}" if run else ""
    load = f" --load {shlex.quote(run.load)}" if run else ""
    soak = f" --soak {format_duration(run.soak_seconds)}" if run else ""
    base = f"farm submit {shlex.quote(series.source)}{hosts}{load}{soak}"
    lines = [f"{base} --upto {culprit}"]
    if culprit > 1:
        lines += ["# the kernel before it should pass:", f"{base} --upto {culprit - 1}"]
    return lines


def _failures(run: Run | None, regression: str) -> tuple[str | None, list[str]]:
    """What the failing run's verdict said of the counter (its values against the
    baseline), and its other failures."""
    if run is None:
        return None, []
    mine = [f.detail or f.text for f in run.ending.findings if f.counter == regression]
    others = [
        f.title or f.text
        for f in run.ending.findings
        if f.counter != regression and (f.title or f.text) != regression
    ]
    return "; ".join(mine) or None, others


def _one_per_run(log: list[Evidence]) -> list[Evidence]:
    """The last report of each boot: an extended boot is one run, not many."""
    last = {(e.host, e.boot, e.outcome.startswith("counter")): e for e in log}
    return list(last.values())


def build_input(session: Session, bisection_id: int) -> ReportInput:
    b = session.get(Bisection, bisection_id)
    if b is None:
        raise UserError(f"no bisection {bisection_id}", hint="farm bisect status ID to check")
    engine = persist.engine_of(b)
    decision = engine.decide()
    series = session.get(Series, b.series_id) if b.series_id is not None else None
    culprit = None
    if decision.done and decision.culprit is not None and series is not None:
        patch = next((p for p in series.patches if p.index == decision.culprit), None)
        culprit = _patch_ref(patch) if patch is not None else None
    steps = session.scalars(
        select(BisectStep).where(BisectStep.bisection_id == b.id).order_by(BisectStep.seq)
    )
    failing = session.get(Run, b.run_id)
    summary, also_seen = _failures(failing, b.regression)
    return ReportInput(
        bisection_id=b.id,
        series_title=series.title if series else f"run {b.run_id}",
        total=series.total if series else engine.n,
        cover_message_id=series.cover_message_id if series else None,
        regression=b.regression,
        regression_kind=b.regression_kind,
        stack=_stack(session, b),
        counter_summary=summary if b.regression_kind == "counter" else None,
        also_seen=also_seen,
        culprit=culprit,
        confidence=decision.confidence,
        credible_set=decision.credible_set,
        no_culprit=decision.no_culprit,
        runs=[
            TestRun(
                kernel=ev.kernel,
                host=ev.host,
                boot=ev.boot,
                hours=ev.uptime_hours,
                outcome=ev.outcome.value,
            )
            for ev in _one_per_run(engine.log)
        ],
        posterior_steps=[s.posterior for s in steps],
        counters=_counters(session, b) if b.regression_kind == "counter" else [],
        reproduce=_reproduce(series, failing, decision.culprit),
    )
