"""A finished soak's verdict: PASS, FAIL (the kernel's fault, with reasons) or INFRA.

FAIL reasons are what a human and a bisection read: the crash title, the counter name
and its values, the hang with how long the host was silent, a taint change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.detect.counters import Finding, Points, evaluate, underflows
from farm.loads import Load
from farm.soak.console import tail as console_tail
from farm.store.runs import Crash, Run, RunKind, RunState, Verdict
from farm.store.samples import KeyCache, Reading, run_readings, series_of

# /proc/sys/kernel/tainted bits (Documentation/admin-guide/tainted-kernels.rst).
TAINT_FLAGS = "PFSRMBUDAWCIOELKXTN"


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; farm stores UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def taint_letters(value: int) -> str:
    return "".join(f for bit, f in enumerate(TAINT_FLAGS) if value >> bit & 1) or "-"


def hang_reason(host: str, silent: float, missed: int, interval: float, grace: float) -> str:
    return (
        f"hang: {host} did not answer for {silent:.0f}s ({missed} samples missed; limit "
        f"3 x {interval:g}s + {grace:g}s grace)"
    )


def baseline_for(session: Session, run: Run) -> Run | None:
    """The newest finished baseline run on the same host and load, other than ``run``."""
    return session.scalar(
        select(Run)
        .where(
            Run.kind == RunKind.BASELINE,
            Run.host == run.host,
            Run.load == run.load,
            Run.state == RunState.DONE,
            Run.verdict == Verdict.PASS,
            Run.id != run.id,
        )
        .order_by(Run.ended_at.desc(), Run.id.desc())
        .limit(1)
    )


def _soak_points(readings: list[Reading], since: float, counters: set[str]) -> dict[str, Points]:
    soak = [r for r in readings if r.phase == "soak" and r.ts >= since]
    return {c: series_of(soak, c) for c in counters if series_of(soak, c)}


def _final(readings: list[Reading], counters: set[str]) -> dict[str, float]:
    quiesced = [r for r in readings if r.phase == "quiesced"]
    if not quiesced:
        return {}
    return {c: float(v[-1][1]) for c in counters if (v := series_of(quiesced[-1:], c))}


def _warmup_end(run: Run, load: Load, readings: list[Reading]) -> float:
    start = as_utc(run.load_started_at).timestamp() if run.load_started_at else readings[0].ts
    return start + load.warmup


def _judge_counters(
    session: Session,
    run: Run,
    load: Load,
    readings: list[Reading],
    details: dict[str, Any],
    *,
    quiesced: bool,
) -> tuple[list[Finding], list[str]]:
    """The load's counter expectations against the run's samples and its baseline's.
    A run that crashed or hung never quiesced: the trends measured while the load ran
    still count (a leak seen before the crash is a leak), final values do not exist."""
    counters = {e.counter for e in load.expect}
    expect = [e for e in load.expect if quiesced or e.rule != "returns-to-zero"]
    base = baseline_for(session, run) if run.kind != RunKind.BASELINE else None
    base_points = None
    if base is not None:
        base_readings = run_readings(session, base.id, KeyCache())
        if base_readings:
            base_points = _soak_points(
                base_readings, _warmup_end(base, load, base_readings), counters
            )
        details["baseline_run"] = base.id
    return evaluate(
        expect,
        soak=_soak_points(readings, _warmup_end(run, load, readings), counters),
        final=_final(readings, counters),
        baseline=base_points,
    )


def decide(
    session: Session, run: Run, load: Load, findings: dict[str, Any]
) -> tuple[Verdict, list[str], dict[str, Any]]:
    """Judge a run from what the store holds: crashes, samples, the step's findings."""
    reasons: list[str] = []
    details: dict[str, Any] = {"notes": []}
    for crash in session.scalars(select(Crash).where(Crash.run_id == run.id).order_by(Crash.id)):
        reasons.append(f"crash: {crash.title}")
    for key in ("hang", "reboot"):
        if key in findings:
            reasons.append(findings[key])
    if "power_cycle" in findings:
        details["power_cycle"] = findings["power_cycle"]
    stopped = bool(reasons)  # a crash, hang or reboot: the load never quiesced
    if stopped:  # keep the console's last words with the verdict
        details["console_tail"] = console_tail(session, run.id)
    readings = run_readings(session, run.id, KeyCache())
    counter_findings = []
    if readings:
        first, last = readings[0].tainted, readings[-1].tainted
        if last != first:
            reasons.append(
                f"taint: {first} ({taint_letters(first)}) → {last} ({taint_letters(last)})"
            )
        counter_findings.extend(
            underflows(
                [r.vmstat for r in readings]
                + [{f"meminfo:{k}": v for k, v in r.meminfo.items()} for r in readings]
            )
        )
        found, notes = _judge_counters(session, run, load, readings, details, quiesced=not stopped)
        counter_findings.extend(found)
        details["notes"].extend(notes)
    else:
        details["notes"].append("no samples were taken")
    reasons.extend(f.reason() for f in counter_findings)
    details["counter_failures"] = [
        {"counter": f.counter, "rule": f.rule, "value": f.value} for f in counter_findings
    ]
    details["samples"] = len(readings)
    if reasons:
        return Verdict.FAIL, reasons, details
    if not readings:
        return Verdict.INFRA, ["infrastructure: the run ended without a single sample"], details
    return Verdict.PASS, [], details
