# SPDX-License-Identifier: Apache-2.0
"""``make demo``: the motivating case end to end, on a real kernel, unattended.

A 28-patch RFC series (examples/make_series.py) is applied up to 07/28 on Debian's
linux-source 6.1; two QEMU hosts, ``laptop`` and ``workstation``, soak the base and the
patched kernel under the thp-split load through the real scheduler (a private Redis,
a Celery worker and beat from farm.services, plus the exporter). Patch 07 leaks
``nr_anon_transparent_hugepages`` and corrupts the deferred split list
(docs/demo-series.md); the failing run starts a bisection across 01..07, and the demo
prints its report's summary and writes the email reply and the HTML page.

Everything the demo writes (farm.toml, the database, the series, logs, reports) stays
in its directory, so ``FARM_CONFIG=<dir>/farm.toml farm status`` and ``farm report``
work afterwards. Every process it starts is stopped on the way out.

    python -m farm.demo [--data-dir DIR] [--soak 6m] [--json]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from farm import demoseries
from farm.build import ensure_linux_tree
from farm.build.artifacts import BuildMetadata
from farm.build.tree import farm_cache_dir
from farm.config import FarmConfig, default_data_dir, load_config
from farm.data import demo_series_dir
from farm.ending import Verdict
from farm.errors import FarmError, InfraError
from farm.git import git, resolve
from farm.hosts.qemu import QemuVm
from farm.intake.apply import Worktree
from farm.report.text import verdict
from farm.scheduler.api import cancel_run
from farm.scheduler.bisecting import OPEN, wait_for_bisection
from farm.scheduler.submit import submit_series
from farm.services import LocalServices, free_port
from farm.store import Store
from farm.store.base import as_utc, utcnow
from farm.store.bisect import Bisection, BisectStep
from farm.store.builds import Build
from farm.store.runs import TERMINAL, Crash, Run, RunKind
from farm.units import format_duration, parse_duration

MAKE_SERIES = Path(demoseries.__file__)  # run as python -m farm.demoseries
HOSTS = ("laptop", "workstation")
UPTO = 7
LOAD = "thp-split"
LEAK_COUNTER = "nr_anon_transparent_hugepages"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """What the demo runs. ``state_dir`` holds farm.toml, the database, the series, the
    logs and the reports; ``data_dir`` is farm's data directory (builds, VM disks,
    keys), the same directory unless a test shares its kernel builds."""

    state_dir: Path
    data_dir: Path
    soak_seconds: float = 240.0
    memory_mb: int = 512
    sample_interval: float = 3.0
    # Bisect runs: build + boot overhead, soak lengths, the crash time the engine
    # assumes before it has seen any, each bisection's wall-clock budget and the
    # posterior it stops at.
    step_overhead_seconds: float = 90.0
    step_seconds: tuple[float, float] = (75.0, 120.0)
    crash_scale_seconds: float = 300.0
    bisect_budget_seconds: float = 1800.0
    confidence: float = 0.99
    timeout: float = 3600.0


@dataclass
class Outcome:
    """What the demo found, as printed at the end (and with --json)."""

    config: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    builds: dict[str, int] = field(default_factory=dict)
    soak_host_hours: float = 0.0
    leak_flagged_after_seconds: float | None = None
    crash_titles: list[str] = field(default_factory=list)
    bisections: list[dict[str, Any]] = field(default_factory=list)
    metrics_url: str | None = None
    wall_seconds: float = 0.0

    @property
    def culprits(self) -> set[int | None]:
        return {b["culprit"] for b in self.bisections}


def write_config(settings: Settings, tree: Path) -> Path:
    """The demo's farm.toml: two QEMU hosts, the cached tree, second-scale timings."""
    hosts = "".join(
        f'\n[[hosts]]\nname = "{name}"\nkind = "qemu"\nboot_timeout = 300\n'
        f"[hosts.qemu]\nmemory_mb = {settings.memory_mb}\n"
        for name in HOSTS
    )
    path = settings.state_dir / "farm.toml"
    path.write_text(
        "# Written by `make demo` (python -m farm.demo); rewritten on every demo.\n"
        f'data_dir = "{settings.data_dir}"\n'
        f'database_url = "sqlite:///{settings.state_dir / "farm.db"}"\n'
        f'default_load = "{LOAD}"\n'
        f'default_soak = "{format_duration(settings.soak_seconds)}"\n\n'
        "[scheduler]\n"
        f"sample_interval = {settings.sample_interval}\n"
        "hang_grace = 30.0\nlease_seconds = 30.0\nreconcile_seconds = 5.0\n"
        "overdue_seconds = 45.0\n\n"
        "[bisect]\n"
        f"step_overhead_hours = {settings.step_overhead_seconds / 3600:.6f}\n"
        f"min_step_hours = {settings.step_seconds[0] / 3600:.6f}\n"
        f"max_step_hours = {settings.step_seconds[1] / 3600:.6f}\n"
        f"prior_scale_hours = {settings.crash_scale_seconds / 3600:.6f}\n"
        f"max_hours = {settings.bisect_budget_seconds / 3600:.6f}\n"
        f"confidence = {settings.confidence}\n\n"
        f'[[trees]]\nname = "linux"\npath = "{tree}"\n{hosts}'
    )
    return path


def make_series(tree: Path, out: Path, say: Say) -> None:
    """farm.demoseries, as a user would run it. Its output depends only on the
    tree's HEAD, the recipes and the generator, so it is kept in farm's cache under their
    hash: making it checks out a whole kernel tree, minutes on a busy machine."""
    inputs = [*sorted(demo_series_dir().glob("*.toml")), MAKE_SERIES]
    digest = hashlib.sha256(resolve(tree, "HEAD").encode())
    for path in inputs:
        digest.update(path.name.encode() + path.read_bytes())
    cached = farm_cache_dir() / "demo-series" / f"{digest.hexdigest()[:16]}.mbox"
    if not cached.exists():
        say(f"generating the 28-patch demo series (kept in {cached.parent})")
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = cached.with_suffix(f".{os.getpid()}.tmp")
        proc = subprocess.run(
            [sys.executable, "-m", "farm.demoseries", "--tree", str(tree), "--out", str(staging)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise InfraError(f"farm.demoseries failed: {proc.stderr.strip()}")
        staging.replace(cached)
    shutil.copyfile(cached, out)
    say(f"the 28-patch demo series: {out}")


def fresh_start(tree: Path, settings: Settings, say: Say) -> None:
    """Each demo starts from an empty database (an old baseline would be reused and
    the story would be shorter); the previous one is kept as farm.db.prev. The
    previous demo's worktrees go too: the new database would name its branches the
    same."""
    state = settings.state_dir
    db = state / "farm.db"
    if db.exists():
        db.replace(state / "farm.db.prev")
        say(f"previous demo's database kept as {state / 'farm.db.prev'}")
    for suffix in ("-wal", "-shm"):
        (state / f"farm.db{suffix}").unlink(missing_ok=True)
    remove_worktrees(tree, settings.data_dir / "worktrees")


def remove_worktrees(tree: Path, under: Path) -> None:
    """farm's worktrees (and their branches) of ``tree`` below ``under``."""
    listing = git(tree, "worktree", "list", "--porcelain")
    for block in listing.split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines())
        path, branch = Path(fields.get("worktree", "/")), fields.get("branch", "")
        if path.is_relative_to(under) and branch.startswith("refs/heads/"):
            Worktree(tree, path, branch.removeprefix("refs/heads/")).remove()


class Watcher:
    """Prints one line per change: run states and verdicts, crashes, bisection steps."""

    def __init__(self, store: Store, say: Say, started: float) -> None:
        self.store = store
        self.say = say
        self.started = started
        self.seen: dict[str, str] = {}

    def line(self, text: str) -> None:
        self.say(f"[{format_clock(time.monotonic() - self.started)}] {text}")

    def poll(self, *_: object) -> None:
        with self.store.session() as session:
            for run in session.scalars(select(Run).order_by(Run.id)):
                self._run(run)
            for crash in session.scalars(select(Crash).order_by(Crash.id)):
                self._once(f"crash{crash.id}", f"run {crash.run_id}: crash captured: {crash.title}")
            for b in session.scalars(select(Bisection).order_by(Bisection.id)):
                self._once(f"b{b.id}:{b.state}", f"bisection {b.id} ({b.regression}): {b.state}")
            for step in session.scalars(select(BisectStep).order_by(BisectStep.id)):
                self._step(step)

    def _once(self, key: str, text: str) -> None:
        if key not in self.seen:
            self.seen[key] = text
            self.line(text)

    def _run(self, run: Run) -> None:
        state = f"{run.state}" + (f" {run.verdict}" if run.verdict else "")
        if self.seen.get(f"run{run.id}") == state:
            return
        self.seen[f"run{run.id}"] = state
        why = f": {'; '.join(run.reasons)}" if run.reasons else ""
        self.line(f"run {run.id} {describe(run)}: {state}{why}")

    def _step(self, step: BisectStep) -> None:
        top = max(range(len(step.posterior) - 1), key=step.posterior.__getitem__, default=None)
        best = "" if top is None else f"; P({top + 1:02d})={step.posterior[top]:.2f}"
        kernel = "base" if step.kernel == 0 else f"+{step.kernel:02d}"
        self._once(
            f"step{step.id}",
            f"bisection {step.bisection_id} step {step.seq}: {kernel} on {step.host}: "
            f"{step.outcome} at {step.uptime_hours * 60:.1f} min uptime{best}",
        )


def describe(run: Run) -> str:
    kernel = "base" if run.upto == 0 else f"+{run.upto:02d}"
    return f"{run.host} {run.kind} {kernel}"


def format_clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


@contextmanager
def exporter(config_path: Path, log_dir: Path) -> Iterator[str]:
    """``farm exporter`` on a free loopback port; its /metrics URL."""
    port = free_port()
    with (log_dir / "exporter.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "farm", "exporter", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FARM_CONFIG": str(config_path)},
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_demo(settings: Settings, say: Say = click.echo) -> Outcome:
    """Prepare, soak, bisect, report; tears down everything it started."""
    started = time.monotonic()
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    say("preparing the kernel tree (cached after the first time)")
    tree = ensure_linux_tree(progress=say)
    config_path = write_config(settings, tree)
    outcome = Outcome(config=str(config_path))
    config = load_config(config_path)
    make_series(tree, state / "series.mbox", say)
    fresh_start(tree, settings, say)
    store = Store(config.db_url)
    try:
        with (
            LocalServices(config_path, state / "logs") as stack,
            exporter(config_path, state / "logs") as metrics_url,
        ):
            outcome.metrics_url = metrics_url
            say(f"redis on 127.0.0.1:{stack.port}, worker and beat started; metrics: {metrics_url}")
            config = config.model_copy(update={"broker_url": stack.broker_url})
            stack.start_worker("worker", hosts=list(HOSTS))
            stack.start_beat()
            try:
                _soak_and_bisect(
                    config, store, state / "series.mbox", settings, outcome, started, say
                )
            finally:
                _cancel_active(store)
                for name in HOSTS:
                    QemuVm(config.host(name), config.data_dir).stop()
        _account(store, outcome, started)
    finally:
        store.dispose()
    outcome.wall_seconds = time.monotonic() - started
    return outcome


def _soak_and_bisect(
    config: FarmConfig,
    store: Store,
    mbox: Path,
    settings: Settings,
    outcome: Outcome,
    started: float,
    say: Say,
) -> None:
    soak = format_duration(settings.soak_seconds)
    say(
        f"farm submit series.mbox --upto {UPTO} --hosts {','.join(HOSTS)} --soak {soak} "
        f"--load {LOAD}"
    )
    submitted = submit_series(
        config,
        store,
        mbox,
        hosts=HOSTS,
        load=LOAD,
        soak_seconds=settings.soak_seconds,
        progress=say,
        upto=UPTO,
    )
    applied, run_ids = submitted.intake, submitted.runs
    say(f"series {applied.series.title!r}: patches 01..{UPTO:02d} applied as {applied.branch}")
    watcher = Watcher(store, say, started)
    deadline = started + settings.timeout
    while (waiting := _waiting_for(store, run_ids)) is not None:
        if time.monotonic() > deadline:
            raise InfraError(
                f"the demo did not finish within {format_duration(settings.timeout)}",
                hint="--timeout 2h, and see the logs in " + str(settings.state_dir / "logs"),
            )
        match waiting:
            case Soaking():
                watcher.poll()
                time.sleep(2)
            case Bisecting(bisection_id):  # auto-requested: one for all hosts that failed alike
                remaining = max(1.0, deadline - time.monotonic())
                wait_for_bisection(store, bisection_id, remaining, progress=watcher.poll)
    watcher.poll()
    for bisection_id in _bisections(store):
        outcome.bisections.append(_write_reports(config, store, bisection_id, settings.state_dir))


@dataclass(frozen=True)
class Soaking:
    """Runs are in flight, or a patched run failed and the beat has not yet requested
    its bisection."""


@dataclass(frozen=True)
class Bisecting:
    """A bisection is open: the demo waits for it."""

    bisection_id: int


Waiting = Soaking | Bisecting | None  # None: nothing left to wait for


def _waiting_for(store: Store, run_ids: list[int]) -> Waiting:
    """What the demo still waits for. A patched run that failed gets its bisection at
    the beat's next tick; one whose failure cannot be bisected (a hang) is given a
    minute."""
    with store.session() as session:
        open_id = session.scalar(
            select(Bisection.id).where(Bisection.state.in_(OPEN)).order_by(Bisection.id)
        )
        if open_id is not None:
            return Bisecting(int(open_id))
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids))).all()
        if any(r.state not in TERMINAL for r in runs):
            return Soaking()
        requested = set(session.scalars(select(Bisection.run_id)).all())
        recent = utcnow() - dt.timedelta(seconds=60)
        unrequested = any(
            r.kind == RunKind.PATCHED
            and r.verdict == Verdict.FAIL
            and r.id not in requested
            and r.ended_at is not None
            and as_utc(r.ended_at) > recent
            for r in runs
        )
        return Soaking() if unrequested else None


def _bisections(store: Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(Bisection.id).order_by(Bisection.id)))


def _cancel_active(store: Store) -> None:
    """Runs still in flight (settled kernels the driver did not stop): cancel them so
    their hosts are freed before the VMs are stopped."""
    with store.session() as session:
        active = session.scalars(select(Run.id).where(Run.state.not_in(TERMINAL))).all()
    for run_id in active:
        cancel_run(store, run_id)
    if active:
        time.sleep(5)  # the worker's next step stops the load


def _write_reports(
    config: FarmConfig, store: Store, bisection_id: int, state_dir: Path
) -> dict[str, Any]:
    """The email reply (with its config and repro.sh) and the HTML page of a bisection;
    what they say, in short."""
    from farm.report import email, render
    from farm.scheduler.report_input import build_input

    with store.session() as session:
        ri = build_input(session, bisection_id, config)
        b = session.get(Bisection, bisection_id)
        assert b is not None
        state = str(b.state)
    reports = state_dir / "reports"
    reports.mkdir(exist_ok=True)
    mail = reports / f"bisect-{bisection_id}.eml"
    mail.write_bytes(email.build_email(ri, email.identity_of(config)).as_bytes())
    page = reports / f"bisect-{bisection_id}.html"
    page.write_text(render.to_html(ri))
    return {
        "id": bisection_id,
        "state": state,
        "regression": ri.regression,
        "kind": ri.regression_kind,
        "verdict": verdict(ri),
        "culprit": ri.culprit.index if ri.culprit else None,
        "confidence": ri.confidence,
        "evidence": [
            f"{'base' if r.kernel == 0 else f'+{r.kernel:02d}'} on {r.host}: {r.outcome} "
            f"at {r.hours * 60:.1f} min uptime"
            for r in ri.runs
        ],
        "email": str(mail),
        "html": str(page),
    }


def _account(store: Store, outcome: Outcome, started: float) -> None:
    """Runs, builds (clean, incremental, cache hits), soak host-hours, leak timing."""
    began = utcnow().timestamp() - (time.monotonic() - started)
    with store.session() as session:
        runs = session.scalars(select(Run).order_by(Run.id)).all()
        outcome.crash_titles = list(session.scalars(select(Crash.title).order_by(Crash.id)))
        builds = session.scalars(select(Build)).all()
        for run in runs:
            soaked = 0.0
            if run.load_started_at is not None:
                end = as_utc(run.ended_at or utcnow())
                soaked = max(0.0, (end - as_utc(run.load_started_at)).total_seconds())
            outcome.soak_host_hours += soaked / 3600
            outcome.runs.append(
                {
                    "id": run.id,
                    "host": run.host,
                    "kind": str(run.kind),
                    "upto": run.upto,
                    "state": str(run.state),
                    "verdict": str(run.verdict) if run.verdict else None,
                    "reasons": list(run.reasons),
                    "soaked_seconds": round(soaked, 1),
                }
            )
            leaked = LEAK_COUNTER in run.ending.failed_counters
            if (
                run.kind == RunKind.PATCHED
                and leaked
                and outcome.leak_flagged_after_seconds is None
            ):
                assert run.load_started_at is not None and run.ended_at is not None
                outcome.leak_flagged_after_seconds = (
                    as_utc(run.ended_at) - as_utc(run.load_started_at)
                ).total_seconds()
    counts = {"clean": 0, "incremental": 0, "cache_hit": 0}
    for build in builds:
        meta = BuildMetadata.read(Path(build.artifacts_dir))
        started_at = meta.started_at if meta else None
        if started_at is None or _timestamp(started_at) < began:
            counts["cache_hit"] += 1
        else:
            counts["incremental" if build.incremental else "clean"] += 1
    outcome.builds = counts


def _timestamp(iso: str) -> float:
    return as_utc(dt.datetime.fromisoformat(iso)).timestamp()


def summary(outcome: Outcome) -> list[str]:
    """The closing lines: each bisection's verdict and evidence, where to look next."""
    lines = []
    for b in outcome.bisections:
        lines.append(f"bisection {b['id']} of {b['kind']} {b['regression']!r}: {b['verdict']}")
        lines += [f"  evidence: {e}" for e in b["evidence"]]
        lines += [f"  email reply: {b['email']}", f"  HTML report: {b['html']}"]
    if not outcome.bisections:
        lines.append("no bisection: no patched run failed")
    lines += [f"crash captured: {t}" for t in dict.fromkeys(outcome.crash_titles)]
    if outcome.leak_flagged_after_seconds is not None:
        leak = format_duration(round(outcome.leak_flagged_after_seconds))
        lines.append(f"leak: {LEAK_COUNTER} flagged {leak} after the patched soak began")
    b = outcome.builds
    lines.append(
        f"builds: {b['clean']} clean, {b['incremental']} incremental, {b['cache_hit']} cache "
        f"hits; soak: {outcome.soak_host_hours:.2f} host-hours; wall clock "
        f"{format_duration(round(outcome.wall_seconds))}"
    )
    config = f"FARM_CONFIG={outcome.config}"
    lines.append(f"metrics were served at {outcome.metrics_url} ({config} farm exporter)")
    lines.append(f"look again: {config} farm status --all")
    for b in outcome.bisections:
        lines.append(f"            {config} farm report {b['id']} --format markdown")
    return lines


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir().parent / "farm-demo",
    show_default=True,
    help="Where the demo's farm.toml, database, series, logs and reports go.",
)
@click.option("--soak", default="4m", show_default=True, help="Baseline and patched soak length.")
@click.option("--memory", "memory_mb", default=512, show_default=True, help="MB per QEMU host.")
@click.option("--timeout", default="1h", show_default=True, help="Give up after this long.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON at the end.")
def main(data_dir: Path, soak: str, memory_mb: int, timeout: str, as_json: bool) -> None:
    """Soak a 28-patch series on two QEMU hosts, find the bad patch, write the report."""
    data_dir = data_dir.expanduser().resolve()
    settings = Settings(
        state_dir=data_dir,
        data_dir=data_dir,
        soak_seconds=parse_duration(soak),
        memory_mb=memory_mb,
        timeout=parse_duration(timeout),
    )
    say: Say = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    signal.signal(signal.SIGTERM, _interrupted)  # `kill` tears down like Ctrl-C
    try:
        outcome = run_demo(settings, say)
    except FarmError as exc:
        click.echo(f"farm demo: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("farm demo: interrupted; everything it started is stopped", err=True)
        sys.exit(130)
    for line in summary(outcome):
        say(line)
    if as_json:
        click.echo(json.dumps(asdict(outcome), indent=2))
    if UPTO not in outcome.culprits:
        sys.exit(2)  # the demo's point was not made: say so to scripts


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
