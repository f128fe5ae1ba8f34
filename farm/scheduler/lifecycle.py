# SPDX-License-Identifier: Apache-2.0
"""The run lifecycle: queued → building → booting → soaking → quiescing →
collecting → done, one short idempotent step at a time.

A step reads a snapshot of the run (short session), acts on the host without holding
a database transaction, then commits its outcome in one transaction that is

- fenced: it commits only if the host's fence in the database is still the one our
  lease got, so a worker whose lease expired (paused, partitioned) cannot write;
- ticked: it commits only if the run's tick is the one the task carried, so a
  duplicate task (redelivered by the broker, or re-driven by the reconciler) drops.

The tick's UPDATE comes first and locks the run's ``run_progress`` row until the
commit: on PostgreSQL that row is the run's lock (cancel_run takes it too; the
reconciler skips a locked one), so concurrent writers of one run are serialised, and
everyone takes it before the host's row, never after.

Every step may run twice (a worker killed after acting, before committing): booting
boots again, the load start finds the running load, a sample is one more sample.
The database is the record of truth; the returned delay says when to step again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from farm.build.kconfig import BaseConfig
from farm.config import FarmConfig
from farm.detect.crash import parse as parse_crashes
from farm.ending import Cause, PowerCycle, RunEnding, SoakEvents, Verdict, only
from farm.errors import FarmBug, FarmError, InfraError, KernelError, UserError
from farm.hosts import laptop
from farm.hosts.base import CommandTimeout, Host, HostUnreachable, Transport
from farm.hosts.remote import RemoteHost
from farm.loads import Load, Selftests, get_load
from farm.scheduler import console as console_mod
from farm.scheduler import health as host_health
from farm.scheduler import notifying
from farm.scheduler.verdict import decide, hang_finding, reboot_finding
from farm.soak import load as load_mod
from farm.soak import selftests as selftests_mod
from farm.soak.sampler import LoadPulse, Reading, take_sample
from farm.store import Store
from farm.store.base import as_utc, utcnow
from farm.store.runs import TERMINAL, Run, RunKind, RunState
from farm.store.samples import HostState, KeyCache, RunProgress, Sample, ensure_progress, sample_row

if TYPE_CHECKING:
    from farm.scheduler.builds import BuildRequest

log = logging.getLogger(__name__)

BUILD_POLL_SECONDS = 5.0  # how often a run in building looks for its kernel
# What a host that stopped answering looks like; other failures are not silence.
SILENCE = (HostUnreachable, CommandTimeout)
Write = Callable[[Session], None]


class LeaseLost(InfraError):
    """Another worker leased the host after us: our outcome must not be written."""


@dataclass
class Ctx:
    """What a step needs: configuration, store, the host, and our lease's fence."""

    config: FarmConfig
    store: Store
    host: Host
    fence: int
    keys: KeyCache = field(default_factory=KeyCache)
    # (run, host) of runs a step queued (a health check): the caller sends their steps
    followups: list[tuple[int, str]] = field(default_factory=list)

    @property
    def interval(self) -> float:
        return self.config.scheduler.sample_interval

    @property
    def remote_dir(self) -> str:
        return self.config.scheduler.remote_dir


@dataclass(frozen=True)
class Snap:
    """A detached copy of a run and its progress, read at the start of a step."""

    run: Run
    progress: RunProgress


@dataclass
class Outcome:
    state: RunState | None = None
    delay: float = 0.0
    run: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    verdict: tuple[Verdict, RunEnding] | None = None
    release_host: bool = False


def snapshot(store: Store, run_id: int) -> Snap | None:
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return None
        progress = ensure_progress(session, run.id)
        session.expunge_all()
    return Snap(run, progress)


def advance(ctx: Ctx, run_id: int, tick: int) -> tuple[int, float] | None:
    """Take one step of ``run_id`` if ``tick`` is current: (next tick, delay) or None
    when the run is finished or the task was a duplicate."""
    snap = snapshot(ctx.store, run_id)
    if snap is None or snap.run.state in TERMINAL or snap.progress.tick != tick:
        return None
    if snap.run.host != ctx.host.name:
        raise FarmBug(f"run {run_id} is for host {snap.run.host}, stepped on {ctx.host.name}")
    try:
        outcome = _dispatch(ctx, snap)
    except KernelError as exc:
        ending = only(Cause.KERNEL, exc.message)
        outcome = Outcome(verdict=(Verdict.FAIL, ending), release_host=True)
    except LeaseLost:
        raise
    except InfraError as exc:
        outcome = _infra_failure(ctx, snap, exc)
    except UserError as exc:  # a wrong key or inventory: retrying cannot help
        reason = f"configuration: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        outcome = Outcome(verdict=(Verdict.INFRA, only(Cause.CONFIG, reason)), release_host=True)
    return commit(ctx, snap, outcome)


def _dispatch(ctx: Ctx, snap: Snap) -> Outcome:
    if snap.progress.cancel_requested:
        return _cancel(ctx, snap)
    step = STEPS.get(snap.run.state)
    if step is None:
        raise FarmBug(f"run {snap.run.id} is in state {snap.run.state} with no step")
    return step(ctx, snap)


def commit(ctx: Ctx, snap: Snap, outcome: Outcome) -> tuple[int, float] | None:
    """Write ``outcome`` if the tick and the fence still hold; writes may still adjust
    the outcome (the console write moves a crashed run on), so they run first."""
    with ctx.store.session() as session:
        ticked = session.execute(
            update(RunProgress)
            .where(RunProgress.run_id == snap.run.id, RunProgress.tick == snap.progress.tick)
            .values(tick=RunProgress.tick + 1)
        )
        if ticked.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        fenced = session.execute(
            update(HostState)
            .where(HostState.host == ctx.host.name, HostState.fence == ctx.fence)
            .values(fence=ctx.fence)
        )
        if fenced.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"{ctx.host.name}: lease fence {ctx.fence} is stale")
        for write in outcome.writes:
            write(session)
        now = time.time()
        session.execute(
            update(RunProgress)
            .where(RunProgress.run_id == snap.run.id)
            .values(due_at=now + outcome.delay, **outcome.progress)
        )
        run = session.get(Run, snap.run.id)
        assert run is not None
        _apply(session, run, outcome, now)
        if run.state in TERMINAL:
            check = host_health.after_run(session, ctx.config, run)
            if check is not None:
                ctx.followups.append((check, run.host))
            notifying.run_ended(session, ctx.config, run)
        if outcome.release_host or run.state in TERMINAL:
            session.execute(
                update(HostState)
                .where(HostState.host == ctx.host.name, HostState.run_id == run.id)
                .values(run_id=None)
            )
        finished = run.state in TERMINAL
    return None if finished else (snap.progress.tick + 1, outcome.delay)


def _apply(session: Session, run: Run, outcome: Outcome, now: float) -> None:
    for key, value in outcome.run.items():
        setattr(run, key, value)
    state = outcome.state
    if outcome.verdict is not None:
        run.verdict, run.ending = outcome.verdict
        run.ended_at = utcnow()
        state = RunState.DONE
    if state is not None and state != run.state:
        run.state = state
        session.execute(
            update(RunProgress).where(RunProgress.run_id == run.id).values(state_since=now)
        )


def _infra_failure(ctx: Ctx, snap: Snap, exc: InfraError) -> Outcome:
    failures = snap.progress.infra_failures + 1
    limit = ctx.config.scheduler.max_infra_retries
    log.warning("run %s: %s (infrastructure failure %d/%d)", snap.run.id, exc, failures, limit)
    if failures > limit:
        return Outcome(
            verdict=(Verdict.INFRA, only(Cause.INFRA, f"infrastructure: {exc.message}")),
            release_host=True,
            writes=[lambda _session: _stop_load(ctx, snap.run.id)],
        )
    return Outcome(delay=min(ctx.interval * failures, 300.0), progress={"infra_failures": failures})


def _stop_load(ctx: Ctx, run_id: int) -> None:
    """Try to stop the run's load and release its sleep inhibitor: best effort, never
    fatal (the host may be gone)."""
    try:
        with _transport(ctx) as transport:
            load_mod.stop(transport, run_id=run_id, remote_dir=ctx.remote_dir)
            laptop.release(transport, load_mod.run_dir(ctx.remote_dir, run_id))
    except InfraError as exc:
        log.info("run %s: load not stopped: %s", run_id, exc)


def _selftest_results(ctx: Ctx, run_id: int) -> list[selftests_mod.Result] | None:
    """The TAP results of the load's complete selftest rounds; None: unreadable."""
    try:
        with _transport(ctx) as transport:
            text = selftests_mod.read_results(transport, load_mod.run_dir(ctx.remote_dir, run_id))
    except InfraError as exc:
        log.warning("run %s: selftest results not read: %s", run_id, exc)
        return None
    return selftests_mod.parse_results(text)


@contextmanager
def _transport(ctx: Ctx) -> Iterator[Transport]:
    """A connection to the step's host, closed whatever happens."""
    transport = ctx.host.transport()
    try:
        yield transport
    finally:
        transport.close()


# --- steps ------------------------------------------------------------------------


def _queued(ctx: Ctx, snap: Snap) -> Outcome:
    """Claim the host if it is free and this is the oldest queued run for it."""
    with ctx.store.session() as session:
        hs = session.get(HostState, ctx.host.name)
        owner = hs.run_id if hs else None
        first = session.scalar(
            select(Run.id)
            .where(Run.host == ctx.host.name, Run.state == RunState.QUEUED)
            .order_by((Run.kind == RunKind.HEALTH).desc(), Run.id)  # a health check first
            .limit(1)
        )
        barred = host_health.gate(session, ctx.host.name, snap.run.kind)
    if owner not in (None, snap.run.id) or first != snap.run.id or barred:
        waiting = Outcome(delay=ctx.interval)
        _ask_early(ctx, snap, waiting)
        return waiting
    run_id = snap.run.id
    running = snap.run.details.get("kernel") == "running"
    outcome = Outcome(state=RunState.BOOTING if running else RunState.BUILDING)
    outcome.run["started_at"] = utcnow()

    def claim(session: Session) -> None:
        """Only a free host (or one already ours) is claimed: what was read above may
        have changed since; then the run stays queued and looks again."""
        claimed = session.execute(
            update(HostState)
            .where(
                HostState.host == ctx.host.name,
                or_(HostState.run_id.is_(None), HostState.run_id == run_id),
            )
            .values(run_id=run_id)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            outcome.state, outcome.run, outcome.delay = None, {}, ctx.interval

    outcome.writes.append(claim)
    return outcome


def _base_config(ctx: Ctx) -> BaseConfig:
    """What the host's kernels are configured from; a ``host`` config is read over SSH
    the first time only."""
    from farm.hosts.kconfig_source import host_base_config, saved_path

    config, data_dir = ctx.host.config, ctx.config.data_dir
    if config.kernel_config.kind != "host" or saved_path(config, data_dir).exists():
        return host_base_config(config, data_dir, None)
    with _transport(ctx) as transport:
        return host_base_config(config, data_dir, transport)


def _earlier_patches(ctx: Ctx, snap: Snap) -> list[tuple[int, str]]:
    """(number, commit) of the patches applied before the run's last one."""
    from farm.store.series import Application

    if snap.run.application_id is None or snap.run.upto <= 1:
        return []
    with ctx.store.session() as session:
        app = session.get(Application, snap.run.application_id)
        if app is None:
            return []
        return [(c.index, c.sha) for c in app.commits if 0 < c.index < snap.run.upto]


def _tree_of(ctx: Ctx, snap: Snap) -> tuple[Path, Path | None]:
    from farm.store.series import Application

    tree_name = snap.run.details.get("tree")
    configured = ctx.config.tree(tree_name) if tree_name else ctx.config.tree()
    fragment = configured.config_fragment if configured else None
    if snap.run.application_id is not None:
        with ctx.store.session() as session:
            app = session.get(Application, snap.run.application_id)
            if app is not None:
                return Path(app.tree), fragment
    if configured is None:
        raise InfraError(f"run {snap.run.id}: no tree to build {snap.run.commit[:12]} from")
    return configured.path, fragment


def _build_request(ctx: Ctx, snap: Snap, base: BaseConfig) -> BuildRequest:
    from farm.scheduler.builds import BuildRequest

    tree, fragment = _tree_of(ctx, snap)
    earlier = _earlier_patches(ctx, snap) if ctx.config.build.check_each_patch else []
    return BuildRequest.of(
        tree,
        snap.run.commit,
        fragment=fragment,
        base=base,
        earlier=earlier,
        tree_name=snap.run.details.get("tree"),
    )


def _building(ctx: Ctx, snap: Snap) -> Outcome:
    """Wait for the kernel, built by a build worker (farm.scheduler.builds): a short
    look each time, so the host's lease is never held while it builds."""
    from farm.scheduler import builds

    request = _build_request(ctx, snap, _base_config(ctx))
    artifacts = builds.artefacts(ctx.config, ctx.store, request)
    if artifacts is None:
        return Outcome(delay=min(ctx.interval, BUILD_POLL_SECONDS))
    kernel = {"dir": str(artifacts.dir), "release": artifacts.release}
    selftests = _soak_load(ctx, snap).selftests
    if selftests is not None:  # the load's selftests, from the same tree and commit
        kernel["selftests"] = str(_selftests(ctx, snap, selftests))
    return Outcome(state=RunState.BOOTING, progress={"kernel": kernel})


def _selftests(ctx: Ctx, snap: Snap, selftests: Selftests) -> Path:
    """Built here, by the worker that boots the kernel, from its own copy of the tree
    (small static programs, a minute at most; cached per commit)."""
    from farm.build.sandbox import for_config
    from farm.build.selftests import build_selftests

    tree, _ = _tree_of(ctx, snap)
    return build_selftests(
        tree,
        snap.run.commit,
        data_dir=ctx.config.data_dir,
        target=selftests.target,
        programs=selftests.programs,
        sandbox=for_config(ctx.config),
        progress=lambda msg: log.info("run %s: selftests: %s", snap.run.id, msg),
    )


def _ask_early(ctx: Ctx, snap: Snap, outcome: Outcome) -> None:
    """A run waiting for its host asks for its kernel now, once, so that it is built
    (elsewhere) while the host soaks another run. Not when the host's own config must
    first be read from it; a failure here is met again in ``building``."""
    from farm.hosts.kconfig_source import host_base_config, saved_path
    from farm.scheduler import builds

    host, data_dir = ctx.host.config, ctx.config.data_dir
    if snap.run.details.get("kernel") == "running" or snap.progress.kernel:
        return
    if host.kernel_config.kind == "host" and not saved_path(host, data_dir).exists():
        return
    outcome.progress["kernel"] = {"asked": True}
    try:
        builds.ask(
            ctx.config, ctx.store, _build_request(ctx, snap, host_base_config(host, data_dir, None))
        )
    except FarmError as exc:
        log.info("run %s: kernel not asked for early: %s", snap.run.id, exc)


def _booting(ctx: Ctx, snap: Snap) -> Outcome:
    console_start = ctx.host.console.end()
    if snap.run.details.get("kernel") == "running":
        with _transport(ctx) as transport:
            release = transport.run(["uname", "-r"]).stdout.strip()
        boot_id = ctx.host.boot_id()
    else:
        from farm.build.artifacts import cached_build

        artifacts = cached_build(Path(snap.progress.kernel["dir"]))
        if artifacts is None:  # the build vanished (cache cleaned): build it again
            return Outcome(state=RunState.BUILDING)
        booted = ctx.host.boot(artifacts)
        release, boot_id = booted.release, booted.boot_id
    now = time.time()
    return Outcome(
        state=RunState.SOAKING,
        run={"kernel_release": release, "boot_id": boot_id},
        progress={"console_offset": console_start, "last_ok": now, "missed": 0},
    )


def _soak_load(ctx: Ctx, snap: Snap) -> Load:
    return get_load(ctx.config, snap.run.load)


def _soaking(ctx: Ctx, snap: Snap) -> Outcome:
    load = _soak_load(ctx, snap)
    outcome = Outcome(delay=ctx.interval)
    try:
        with _transport(ctx) as transport:
            if snap.run.load_started_at is None:
                notes = laptop.prepare(
                    transport,
                    ctx.host.config,
                    run_dir=load_mod.run_dir(ctx.remote_dir, snap.run.id),
                    run_id=snap.run.id,
                    seconds=snap.run.soak_seconds,
                )
                if notes:
                    outcome.run["details"] = laptop.with_notes(snap.run.details, notes)
                started = load_mod.start(
                    transport,
                    load=load,
                    run_id=snap.run.id,
                    seconds=snap.run.soak_seconds,
                    remote_dir=ctx.remote_dir,
                    cache_dir=ctx.config.data_dir / "loads",
                    selftests=_built_selftests(snap),
                )
                outcome.run["load_started_at"] = utcnow()
                outcome.progress["load_pid"] = started.pid
            reading, pulse = take_sample(
                transport,
                run_dir=load_mod.run_dir(ctx.remote_dir, snap.run.id),
                timeout=max(ctx.interval, 10.0),
            )
    except SILENCE as exc:
        return _missed(ctx, snap, exc)
    _record_sample(ctx, snap, outcome, reading)
    _read_console(ctx, snap, outcome)
    started_at = snap.run.load_started_at or outcome.run["load_started_at"]
    if reading.boot_id != snap.run.boot_id:
        reboot = reboot_finding(snap.run.boot_id, reading.boot_id)
        outcome.progress["events"] = snap.progress.events.model_copy(update={"reboot": reboot})
        outcome.state = RunState.COLLECTING
    elif _load_failed(pulse):
        assert pulse is not None
        failed = only(Cause.LOAD, f"load {load.name} exited with status {pulse.exit_code}")
        return Outcome(
            verdict=(Verdict.INFRA, failed),
            release_host=True,
            writes=outcome.writes,
        )
    elif time.time() >= as_utc(started_at).timestamp() + snap.run.soak_seconds:
        outcome.state = RunState.QUIESCING
    if outcome.state is not None:
        outcome.delay = 0.0
    return outcome


def _built_selftests(snap: Snap) -> Path | None:
    built = snap.progress.kernel.get("selftests")
    return Path(built) if built else None


def _load_failed(pulse: LoadPulse | None) -> bool:
    return pulse is not None and not pulse.alive and pulse.exit_code not in (None, 0)


def _record_sample(ctx: Ctx, snap: Snap, outcome: Outcome, reading: Reading) -> None:
    host, run_id = ctx.host.name, snap.run.id

    def write(session: Session) -> None:
        row = sample_row(ctx.keys, session, host=host, run_id=run_id, reading=reading)
        sample = Sample(**row)
        session.add(sample)
        session.flush()
        session.execute(
            update(HostState)
            .where(HostState.host == host)
            .values(up=True, last_ok=reading.ts, last_sample_id=sample.id)
        )

    outcome.writes.append(write)
    outcome.progress.update(last_ok=reading.ts, missed=0)


def _read_console(ctx: Ctx, snap: Snap, outcome: Outcome) -> list[str]:
    """Tail the console into the store and parse it; a soaking run with a crash on
    record stops soaking and is collected at once. Returns the crash titles of the
    new lines alone (the step's own look; the stored scan also covers older lines)."""
    chunk = console_mod.read_new(ctx.host.console, snap.progress.console_offset)
    outcome.progress["console_offset"] = chunk.offset
    run_id, host = snap.run.id, ctx.host.name

    def write(session: Session) -> None:
        console_mod.store_lines(session, run_id=run_id, host=host, lines=chunk.lines)
        session.flush()
        _, scan_from = console_mod.scan(
            session, run_id=run_id, host=host, scan_from=snap.progress.console_scan_from
        )
        outcome.progress["console_scan_from"] = scan_from
        crashed = console_mod.crash_titles(session, run_id)
        if crashed and outcome.state in (None, RunState.QUIESCING):
            outcome.state, outcome.delay = RunState.COLLECTING, 0.0

    outcome.writes.append(write)
    return [crash.title for crash in parse_crashes("\n".join(chunk.lines))] if chunk.lines else []


def _missed(ctx: Ctx, snap: Snap, exc: Exception) -> Outcome:
    """The host did not answer. A crash on its console, or silence past 3 intervals +
    grace since the last answer (a hang), ends the soak: the console is kept as
    evidence, the host power-cycled, and the run collected (it FAILs)."""
    now = time.time()
    last_ok = snap.progress.last_ok or snap.progress.state_since
    silent = now - last_ok
    limit = 3 * ctx.interval + ctx.config.scheduler.hang_grace
    missed = snap.progress.missed + 1

    def host_down(session: Session) -> None:
        session.execute(update(HostState).where(HostState.host == ctx.host.name).values(up=False))

    outcome = Outcome(delay=ctx.interval, progress={"missed": missed}, writes=[host_down])
    log.warning(
        "run %s: %s silent %.0fs (%d missed): %s", snap.run.id, ctx.host.name, silent, missed, exc
    )
    # A panic on the console explains the silence at once: no need to wait for a hang.
    crashed = _read_console(ctx, snap, outcome)
    if silent < limit and not crashed:
        return outcome
    events = snap.progress.events.model_copy(update={"power_cycle": _power_cycle(ctx)})
    if not crashed:
        grace = ctx.config.scheduler.hang_grace
        hang = hang_finding(ctx.host.name, silent, missed, ctx.interval, grace)
        events = events.model_copy(update={"hang": hang})
    outcome.progress["events"] = events
    outcome.state = RunState.COLLECTING
    outcome.delay = 0.0
    return outcome


def _power_cycle(ctx: Ctx) -> PowerCycle:
    name = ctx.host.name
    try:
        ctx.host.power.cycle()
    except FarmError as exc:  # no power control is a configuration fact, not a crash
        return PowerCycle(done=False, text=f"power cycle of {name} failed: {exc.message}")
    return PowerCycle(done=True, text=f"{name} power-cycled via {ctx.host.power.name}")


def _quiescing(ctx: Ctx, snap: Snap) -> Outcome:
    load = _soak_load(ctx, snap)
    outcome = Outcome(state=RunState.COLLECTING)
    try:
        with _transport(ctx) as transport:
            load_mod.stop(transport, run_id=snap.run.id, remote_dir=ctx.remote_dir)
            load_mod.quiesce(transport, load, timeout=max(60.0, ctx.interval * 6))
            reading, _ = take_sample(
                transport, run_dir=None, timeout=max(ctx.interval, 10.0), phase="quiesced"
            )
    except SILENCE as exc:
        return _missed(ctx, snap, exc)
    _record_sample(ctx, snap, outcome, reading)
    _read_console(ctx, snap, outcome)
    return outcome


def _collecting(ctx: Ctx, snap: Snap) -> Outcome:
    load = _soak_load(ctx, snap)
    events = snap.progress.events
    selftests = None
    if events.hang is None and events.reboot is None:
        # A crashed host that still answers keeps nothing of the load running.
        _stop_load(ctx, snap.run.id)
        if load.selftests is not None:
            selftests = _selftest_results(ctx, snap.run.id)
    evidence = _aftermath(ctx, events)
    with ctx.store.session() as session:
        if evidence:  # titled like the console's crashes, before the verdict reads them
            run_id, host = snap.run.id, ctx.host.name
            console_mod.store_lines(session, run_id=run_id, host=host, lines=evidence)
            session.flush()
            console_mod.scan(
                session, run_id=run_id, host=host, scan_from=snap.progress.console_scan_from
            )
        verdict, ending = decide(session, snap.run, load, events, selftests=selftests)
    return Outcome(verdict=(verdict, ending), release_host=True)


def _aftermath(ctx: Ctx, events: SoakEvents) -> list[str]:
    """A machine of one's own that rebooted (panic=N, or our power cycle) kept its crash
    in pstore or its previous boot's journal: read, once it is up, as console lines.
    A QEMU host's crash is all on its console already."""
    if ctx.host.config.kind != "ssh" or (events.reboot is None and events.power_cycle is None):
        return []
    if not isinstance(ctx.host, RemoteHost):
        return []
    try:
        ctx.host.wait_ready()
        found = ctx.host.aftermath()
    except FarmError as exc:
        log.warning("%s: no crash evidence collected after the reboot: %s", ctx.host.name, exc)
        return []
    return found.text.splitlines() if found else []


def _cancel(ctx: Ctx, snap: Snap) -> Outcome:
    if snap.run.state in (RunState.SOAKING, RunState.QUIESCING):
        _stop_load(ctx, snap.run.id)
    return Outcome(state=RunState.CANCELLED, run={"ended_at": utcnow()}, release_host=True)


STEPS: dict[RunState, Callable[[Ctx, Snap], Outcome]] = {
    RunState.QUEUED: _queued,
    RunState.BUILDING: _building,
    RunState.BOOTING: _booting,
    RunState.SOAKING: _soaking,
    RunState.QUIESCING: _quiescing,
    RunState.COLLECTING: _collecting,
}
