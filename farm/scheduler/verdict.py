# SPDX-License-Identifier: Apache-2.0
"""A finished soak's verdict: PASS, FAIL (the kernel's fault) or INFRA, and the typed
:class:`farm.ending.RunEnding` saying why: the crashes with their titles, the counters
with their values, the hang with how long the host was silent, a taint change.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.detect import counters
from farm.detect.counters import Points, evaluate, underflows
from farm.ending import Cause, Finding, RunEnding, SoakEvents, Verdict
from farm.loads import Load
from farm.scheduler.console import tail as console_tail
from farm.soak.sampler import Reading
from farm.soak.selftests import Result
from farm.soak.selftests import judge as judge_selftests
from farm.store.base import as_utc
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import KeyCache, run_readings, series_of

# /proc/sys/kernel/tainted bits (Documentation/admin-guide/tainted-kernels.rst).
TAINT_FLAGS = "PFSRMBUDAWCIOELKXTN"


def taint_letters(value: int) -> str:
    return "".join(f for bit, f in enumerate(TAINT_FLAGS) if value >> bit & 1) or "-"


def hang_finding(host: str, silent: float, missed: int, interval: float, grace: float) -> Finding:
    text = (
        f"hang: {host} did not answer for {silent:.0f}s ({missed} samples missed; limit "
        f"3 x {interval:g}s + {grace:g}s grace)"
    )
    return Finding(cause=Cause.HANG, text=text)


def reboot_finding(old_boot_id: str | None, new_boot_id: str) -> Finding:
    text = f"host rebooted during the soak (boot_id {old_boot_id} → {new_boot_id})"
    return Finding(cause=Cause.REBOOT, text=text)


def counter_finding(found: counters.Finding) -> Finding:
    return Finding(
        cause=Cause.COUNTER,
        text=found.reason(),
        counter=found.counter,
        rule=found.rule,
        value=found.value,
        detail=found.message,
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
    ending: RunEnding,
) -> tuple[list[counters.Finding], list[str]]:
    """The load's counter expectations against the run's samples and its baseline's.
    A run that crashed or hung never quiesced: the trends measured while the load ran
    still count (a leak seen before the crash is a leak), final values do not exist."""
    names = {e.counter for e in load.expect}
    expect = [e for e in load.expect if not ending.stopped or e.rule != "returns-to-zero"]
    base = baseline_for(session, run) if run.kind != RunKind.BASELINE else None
    base_points = None
    if base is not None:
        base_readings = run_readings(session, base.id, KeyCache())
        if base_readings:
            base_points = _soak_points(base_readings, _warmup_end(base, load, base_readings), names)
        ending.baseline_run = base.id
    return evaluate(
        expect,
        soak=_soak_points(readings, _warmup_end(run, load, readings), names),
        final=_final(readings, names),
        baseline=base_points,
    )


def decide(
    session: Session,
    run: Run,
    load: Load,
    events: SoakEvents,
    *,
    selftests: list[Result] | None = None,
) -> tuple[Verdict, RunEnding]:
    """Judge a run from what the store holds: crashes, samples, what the soak saw; and
    for a load with selftests, their results read from the host (None: unread)."""
    crashes = session.scalars(select(Crash).where(Crash.run_id == run.id).order_by(Crash.id))
    ending = RunEnding(
        findings=[Finding(cause=Cause.CRASH, text=f"crash: {c.title}", title=c.title)
                  for c in crashes] + events.findings(),
        power_cycle=events.power_cycle,
    )  # fmt: skip
    if ending.stopped:  # keep the console's last words with the verdict
        ending.console_tail = console_tail(session, run.id)
    readings = run_readings(session, run.id, KeyCache())
    ending.samples = len(readings)
    if not readings:
        ending.notes.append("no samples were taken")
        if not ending.findings:
            text = "infrastructure: the run ended without a single sample"
            ending.findings.append(Finding(cause=Cause.INFRA, text=text))
            return Verdict.INFRA, ending
        return Verdict.FAIL, ending
    first, last = readings[0].tainted, readings[-1].tainted
    if last != first:
        text = f"taint: {first} ({taint_letters(first)}) → {last} ({taint_letters(last)})"
        ending.findings.append(Finding(cause=Cause.TAINT, text=text))
    found = underflows(
        [r.vmstat for r in readings]
        + [{f"meminfo:{k}": v for k, v in r.meminfo.items()} for r in readings]
    )
    judged, notes = _judge_counters(session, run, load, readings, ending)
    ending.findings.extend(counter_finding(f) for f in [*found, *judged])
    ending.notes.extend(notes)
    if selftests is not None:
        ending.selftests, found_selftests, notes = judge_selftests(
            selftests, cut_short=ending.stopped
        )
        ending.findings.extend(found_selftests)
        ending.notes.extend(notes)
    return _verdict_of(ending), ending


def _verdict_of(ending: RunEnding) -> Verdict:
    """FAIL on any finding about the kernel; INFRA when all are ours (a selftest the
    host cannot run); PASS on none."""
    if ending.has(*(set(Cause) - {Cause.INFRA})):
        return Verdict.FAIL
    return Verdict.INFRA if ending.findings else Verdict.PASS
