# SPDX-License-Identifier: Apache-2.0
"""What the dashboards overlay and annotate, read from the store at scrape time.

- ``farm_run_counter{run, host, role, counter}``: an active run's watched counters
  (farm.loads.watched_counters) from its newest sample (role ``patched``), and its
  baseline's value as long into the baseline's soak (role ``baseline``): the same
  load on the same host, aligned by time since each run's first sample, so Grafana
  can draw both on one time axis and their difference.
- ``farm_run_event_timestamp_seconds{run, host, event, title, url}``: when each recent
  run started and ended, rebooted, was power-cycled or crashed, with what to call it
  and the web view's page of the run: Grafana annotations (``useValueForTime``).
- ``farm_bisection_leader{bisection, patch, subject}``: the leading patch of each
  active or recent bisection and its posterior probability.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.config import FarmConfig
from farm.ending import Cause
from farm.loads import watched_counters
from farm.soak.sampler import Reading
from farm.store.bisect import Bisection
from farm.store.runs import TERMINAL, Crash, Run, RunKind, baseline_of
from farm.store.samples import KeyCache, Sample, decode, series_of
from farm.store.series import Patch

MAX_TITLE = 120  # a label, not a report: crash titles and subjects are cut here


def counters(config: FarmConfig, session: Session, keys: KeyCache, runs: Sequence[Run]) -> Metric:
    family = GaugeMetricFamily(
        "farm_run_counter",
        "a watched counter of an active run (role patched) and of its baseline as long "
        "into its soak (role baseline)",
        labels=["run", "host", "role", "counter"],
    )
    for run in runs:
        if run.state in TERMINAL or run.kind not in (RunKind.PATCHED, RunKind.BISECT):
            continue
        baseline = baseline_of(session, run)
        pair = _aligned(session, keys, run, baseline) if baseline is not None else None
        if pair is None:
            continue
        names = watched_counters(config, run.load, run.ending.failed_counters)
        for role, reading in zip(("patched", "baseline"), pair, strict=True):
            for name in names:
                for _, value in series_of([reading], name):
                    family.add_metric([str(run.id), run.host, role, name], float(value))
    return family


def _aligned(
    session: Session, keys: KeyCache, run: Run, baseline: Run
) -> tuple[Reading, Reading] | None:
    """The run's newest sample and the baseline's sample as far into its soak."""
    first, newest = _ends(session, run.id)
    base_first, _ = _ends(session, baseline.id)
    if first is None or newest is None or base_first is None:
        return None
    offset = newest.ts - first.ts
    at = (
        session.scalar(
            select(Sample)
            .where(Sample.run_id == baseline.id, Sample.ts >= base_first.ts + offset)
            .order_by(Sample.ts)
            .limit(1)
        )
        or _ends(session, baseline.id)[1]
    )
    assert at is not None
    return decode(keys, session, newest), decode(keys, session, at)


def _ends(session: Session, run_id: int) -> tuple[Sample | None, Sample | None]:
    query = select(Sample).where(Sample.run_id == run_id)
    first = session.scalar(query.order_by(Sample.ts).limit(1))
    last = session.scalar(query.order_by(Sample.ts.desc()).limit(1))
    return first, last


def events(config: FarmConfig, session: Session, runs: Sequence[Run]) -> Metric:
    family = GaugeMetricFamily(
        "farm_run_event_timestamp_seconds",
        "unix time of a run's start, end, reboot, power cycle or crash",
        labels=["run", "host", "event", "title", "url"],
    )
    web = config.api.web_url
    crashes = session.scalars(select(Crash).where(Crash.run_id.in_([r.id for r in runs])))
    by_run: dict[int, list[Crash]] = {}
    for crash in crashes:
        by_run.setdefault(crash.run_id, []).append(crash)
    for run in runs:
        url = f"{web}/runs/{run.id}"
        for event, title, when in _run_events(session, run, by_run.get(run.id, [])):
            family.add_metric([str(run.id), run.host, event, title[:MAX_TITLE], url], when)
    return family


def _run_events(
    session: Session, run: Run, crashes: list[Crash]
) -> Iterator[tuple[str, str, float]]:
    kernel = "base" if run.upto == 0 else f"+{run.upto:02d}"
    started = run.load_started_at or run.started_at
    if started is not None:
        yield "start", f"run {run.id} {run.kind} {kernel} on {run.host}", started.timestamp()
    for crash in crashes:
        yield "crash", crash.title, crash.seen_at.timestamp()
    reboot = _reboot_ts(session, run)
    if reboot is not None:
        found = run.ending.of(Cause.REBOOT)
        yield "reboot", found[0].text if found else f"{run.host} booted again", reboot
    if run.ended_at is not None:
        if run.ending.power_cycle is not None:  # no time of its own: just before the end
            yield "power_cycle", run.ending.power_cycle.text, run.ended_at.timestamp()
        verdict = run.verdict or run.state
        reason = f": {run.ending.reasons[0]}" if run.ending.reasons else ""
        yield "end", f"run {run.id} {verdict}{reason}", run.ended_at.timestamp()


def _reboot_ts(session: Session, run: Run) -> float | None:
    """When the host came back with another boot id during the run: its first sample."""
    first = session.scalar(
        select(Sample.boot_id).where(Sample.run_id == run.id).order_by(Sample.ts).limit(1)
    )
    if first is None:
        return None
    return session.scalar(
        select(Sample.ts)
        .where(Sample.run_id == run.id, Sample.boot_id != first)
        .order_by(Sample.ts)
        .limit(1)
    )


def leaders(session: Session, bisections: Sequence[Bisection]) -> Metric:
    family = GaugeMetricFamily(
        "farm_bisection_leader",
        "posterior probability of the leading patch of an active or recent bisection",
        labels=["bisection", "patch", "subject"],
    )
    for b in bisections:
        *patches, _none = b.posterior or [0.0]
        if not patches:
            continue
        best = max(range(len(patches)), key=patches.__getitem__) + 1
        subject = session.scalar(
            select(Patch.subject).where(Patch.series_id == b.series_id, Patch.index == best)
        )
        family.add_metric(
            [str(b.id), f"{best:02d}", (subject or "")[:MAX_TITLE]], patches[best - 1]
        )
    return family
