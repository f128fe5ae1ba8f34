# SPDX-License-Identifier: Apache-2.0
"""Build a ReportInput from the store: bisection, its steps, the series, runs and crashes.

Counter plots come from the samples table (farm.store.samples): for a counter
regression, every run of the bisection contributes the counter's points over its run.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.bisect.engine import Evidence
from farm.config import FarmConfig, HostConfig
from farm.ending import Verdict
from farm.errors import FarmError, UserError
from farm.loads import WORKERS_DIR, get_load
from farm.report.model import (
    CounterSeries,
    Kernel,
    LoadRecipe,
    PassInput,
    PatchRef,
    ReportInput,
    Reproducer,
    TestRun,
)
from farm.scheduler import bisect_store as persist
from farm.store.bisect import Bisection, BisectStep
from farm.store.builds import Build, BuildState
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import ConsoleLine, run_readings, series_of
from farm.store.series import Application, Patch, Series
from farm.units import format_duration

# The DMI product as the kernel prints it: "DMI: <product>, BIOS ..." at boot and
# "Hardware name: <product>, BIOS ..." in every oops (dump_stack_print_info).
_COMPILER = re.compile(r'^CONFIG_CC_VERSION_TEXT="(.*)"$', re.MULTILINE)  # Kconfig's record
_HARDWARE = re.compile(r"(?:\] DMI|Hardware name): (.+?)(?:, BIOS .*)?$")


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


def _crash(session: Session, b: Bisection) -> Crash | None:
    """The failing run's crash the bisection hunts, or else its first crash (a counter
    regression's run may have crashed too: the patch author wants that text)."""
    crashes = list(
        session.scalars(select(Crash).where(Crash.run_id == b.run_id).order_by(Crash.id))
    )
    hunted = [c for c in crashes if b.regression in (c.title, *c.alt_titles)]
    return next(iter(hunted or crashes), None)


def _build(session: Session, run: Run | None) -> Path | None:
    """The artefacts directory of the run's kernel (one config per farm: the newest
    successful build of its commit)."""
    if run is None:
        return None
    build = session.scalar(
        select(Build)
        .where(Build.commit == run.commit, Build.state == BuildState.OK)
        .order_by(Build.id.desc())
        .limit(1)
    )
    return Path(build.artifacts_dir) if build is not None else None


def _machine(
    session: Session, run: Run | None, crash: Crash | None, host: HostConfig | None
) -> str | None:
    """What the kernel called the machine (DMI: in the oops, or in the boot log the
    console kept), or else what the inventory says."""
    lines = crash.report.splitlines() if crash else []
    if run is not None:
        boot = select(ConsoleLine.line).where(
            ConsoleLine.run_id == run.id, ConsoleLine.line.contains("] DMI: ")
        )
        lines += session.scalars(boot.limit(1)).all()
    for line in lines:
        if match := _HARDWARE.search(line):
            return match[1]
    if host is None:
        return None
    if host.qemu is not None:
        return f"QEMU x86_64 virtual machine, {host.qemu.memory_mb} MB, {host.qemu.cpus} CPU"
    return f"{host.name} ({host.kind} host at {host.address})"


def _kernel(
    session: Session, run: Run | None, config: FarmConfig | None, crash: Crash | None
) -> Kernel:
    app = session.get(Application, run.application_id) if run and run.application_id else None
    directory = _build(session, run)
    text = None
    if directory is not None and (directory / ".config").is_file():
        text = (directory / ".config").read_text(errors="replace")
    found = _COMPILER.search(text) if text else None
    host = next((h for h in config.hosts if run and h.name == run.host), None) if config else None
    return Kernel(
        base_commit=app.base_commit if app else None,
        release=run.kernel_release if run else None,
        compiler=found[1] if found else None,
        config=text,
        config_sha256=hashlib.sha256(text.encode()).hexdigest() if text else None,
        machine=_machine(session, run, crash, host),
    )


def _recipe(config: FarmConfig, name: str, seconds: float) -> LoadRecipe:
    load = get_load(config, name)
    counters = list(dict.fromkeys(e.counter for e in load.expect if ":" not in e.counter))
    return LoadRecipe(
        name=load.name,
        script=load.script,
        quiesce=load.quiesce,
        binaries={b: (WORKERS_DIR / f"{b}.c").read_text() for b in load.binaries},
        counters=counters,
        seconds=seconds,
    )


def _reproducer(
    config: FarmConfig | None, series: Series | None, run: Run | None, kernel: Kernel, upto: int
) -> Reproducer | None:
    """repro.sh's facts, when farm has them all (the series as mailed, a base, a
    config, a load it still knows)."""
    if config is None or series is None or run is None or not config.report.reproducer:
        return None
    if kernel.base_commit is None or kernel.config is None:
        return None
    try:
        load = _recipe(config, run.load, run.soak_seconds)
    except FarmError:  # the load was renamed or removed since: no script rather than none
        return None
    patches = [(p.index, p.raw) for p in series.patches if p.index <= upto and p.raw]
    if len(patches) != upto:
        return None
    return Reproducer(
        base_commit=kernel.base_commit, patches=patches, config=kernel.config, load=load
    )


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


def build_input(
    session: Session, bisection_id: int, config: FarmConfig | None = None
) -> ReportInput:
    """The report of a bisection; with ``config``, the machine and repro.sh too."""
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
    crash = _crash(session, b)
    kernel = _kernel(session, failing, config, crash)
    upto = (
        decision.culprit
        if culprit is not None and decision.culprit
        else (failing.upto if failing else 0)
    )
    applied = [_patch_ref(p) for p in series.patches if p.index <= upto] if series else []
    return ReportInput(
        bisection_id=b.id,
        series_title=series.title if series else f"run {b.run_id}",
        total=series.total if series else engine.n,
        cover_message_id=series.cover_message_id if series else None,
        regression=b.regression,
        regression_kind=b.regression_kind,
        stack=crash.frames[:8]
        if crash and b.regression in (crash.title, *crash.alt_titles)
        else [],
        crash_report=crash.report.splitlines() if crash is not None else [],
        crash_host=crash.host if crash is not None else None,
        crash_uptime_seconds=crash.uptime_seconds if crash is not None else None,
        counter_summary=summary if b.regression_kind == "counter" else None,
        also_seen=also_seen,
        culprit=culprit,
        applied=applied,
        kernel=kernel,
        load=failing.load if failing else None,
        soak_seconds=failing.soak_seconds if failing else None,
        reproducer=_reproducer(config, series, failing, kernel, upto) if culprit else None,
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


def _hours(run: Run) -> float:
    if run.load_started_at is not None and run.ended_at is not None:
        return max(0.0, (run.ended_at - run.load_started_at).total_seconds() / 3600.0)
    return run.soak_seconds / 3600.0


def build_pass_input(
    session: Session, series_id: int, config: FarmConfig | None = None
) -> PassInput:
    """The ``Tested-by:`` report of a series whose submitted runs passed: the runs of
    the most patches applied, every one of them PASS."""
    series = session.get(Series, series_id)
    if series is None:
        raise UserError(f"no series {series_id}", hint="farm series list")
    runs = list(
        session.scalars(
            select(Run)
            .where(
                Run.series_id == series_id, Run.kind == RunKind.PATCHED, Run.state == RunState.DONE
            )
            .order_by(Run.id)
        )
    )
    if not runs:
        raise UserError(f"series {series_id} has no finished run", hint="farm status --all")
    upto = max(r.upto for r in runs)
    tested = [r for r in runs if r.upto == upto and r.verdict != Verdict.INFRA]
    failed = [r for r in tested if r.verdict == Verdict.FAIL]
    if failed:
        raise UserError(
            f"run {failed[0].id} of series {series_id} failed: a Tested-by would be false",
            hint=f"farm bisect start {failed[0].id}, then farm report BISECT",
        )
    if not tested:
        raise UserError(f"series {series_id} has no run that passed", hint="farm status --all")
    patches = [p for p in series.patches if p.index <= upto]
    if not patches:
        raise UserError(f"series {series_id} has no stored patches to reply to")
    last = tested[-1]
    return PassInput(
        series_id=series.id,
        series_title=series.title,
        total=series.total,
        upto=upto,
        cover_message_id=series.cover_message_id,
        reply_to=_patch_ref(patches[-1]),
        applied=[_patch_ref(p) for p in patches],
        kernel=_kernel(session, last, config, None),
        load=last.load,
        runs=[
            TestRun(
                kernel=r.upto,
                host=r.host,
                boot=(r.boot_id or "")[:12],
                hours=_hours(r),
                outcome="pass",
            )
            for r in tested
        ],
    )
