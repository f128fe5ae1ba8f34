# SPDX-License-Identifier: Apache-2.0
"""``farm up``: the services a farm.toml needs, kept running on this machine.

One supervisor process per data directory starts them through farm.services: a
private redis-server unless a broker is configured, a worker serving every configured
host, beat, the exporter, the netconsole listener when a host's console is netconsole,
and the API when a token is configured. ``farm up`` starts the supervisor in its own
session, so closing the terminal stops nothing. A child that exits is started again
after a back-off that doubles from 1 s to 60 s while it keeps dying within a minute of
its start (a crash loop must not eat the machine); one that ran a minute starts again
after 1 s.

Its state is ``<data_dir>/up/``: ``state.json`` (mode 0600: a private broker's URL
holds its password), read by ``farm up --status``, ``farm down`` and every command that
needs the broker; ``lock``, held by the supervisor while it lives, so there is one per
data directory. Logs are ``<data_dir>/logs/<name>.log``. ``farm down`` stops the
supervisor, which stops its children; only processes recorded in state.json, checked
by pid and start time, are ever signalled.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from farm.config import FarmConfig
from farm.errors import InfraError, UserError
from farm.services import LocalServices, worker_args

MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0
STEADY_SECONDS = 60.0  # a child that lived this long was not crash-looping
REDIS = "redis"
SUPERVISOR_FLAG = "--foreground"


@dataclass(frozen=True)
class Service:
    """One supervised process: ``farm ARGS`` (or the private redis-server)."""

    name: str
    args: tuple[str, ...] = ()


def broker_configured(config: FarmConfig) -> bool:
    """True when farm.toml or $FARM_BROKER_URL names a broker: then no Redis of our own."""
    return "broker_url" in config.model_fields_set


def services_for(config: FarmConfig, *, api: bool) -> list[Service]:
    """What ``farm up`` runs for ``config``, in start order (``api``: a token exists)."""
    hosts = [h.name for h in config.hosts]
    wanted = [] if broker_configured(config) else [Service(REDIS)]
    wanted += [
        Service("worker", tuple(worker_args("worker", hosts))),  # farm worker sizes its threads
        Service("beat", ("beat",)),
        Service("exporter", ("exporter",)),
    ]
    if any(h.console.kind == "netconsole" for h in config.hosts):
        wanted.append(Service("netconsole", ("netconsole",)))
    if api:
        wanted.append(Service("api", ("api",)))
    return wanted


# --- the state file -------------------------------------------------------------------


class ChildState(BaseModel):
    name: str
    pid: int | None = None
    start_ticks: int | None = None  # /proc/PID/stat starttime: a reused pid is not ours
    started_at: float | None = None
    restarts: int = 0
    last_exit: int | None = None
    next_start_at: float | None = None


class UpState(BaseModel):
    supervisor_pid: int
    supervisor_ticks: int
    config: str | None
    broker_url: str
    private_broker: bool
    log_dir: str
    ready: bool = False
    services: list[ChildState] = []


def up_dir(data_dir: Path) -> Path:
    return data_dir / "up"


def _state_path(data_dir: Path) -> Path:
    return up_dir(data_dir) / "state.json"


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])  # field 22; the name may hold spaces


def alive(pid: int | None, ticks: int | None) -> bool:
    return pid is not None and ticks is not None and start_ticks(pid) == ticks


def read_state(data_dir: Path) -> UpState | None:
    """The running supervisor's state; None when no supervisor lives for ``data_dir``."""
    try:
        state = UpState.model_validate_json(_state_path(data_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        raise InfraError(
            f"{_state_path(data_dir)} cannot be read: {exc}",
            hint="farm down, then farm up",
        ) from exc
    return state if alive(state.supervisor_pid, state.supervisor_ticks) else None


def _write_state(data_dir: Path, state: UpState) -> None:
    path = _state_path(data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(state.model_dump_json(indent=2))
    tmp.replace(path)


# --- the supervisor (``farm up --foreground``) ----------------------------------------------


@dataclass
class _Child:
    service: Service
    state: ChildState
    failures: int = 0
    pending: bool = False  # exited; starts again at state.next_start_at


class Supervisor:
    """Starts ``services`` on ``stack`` and starts again whatever exits."""

    def __init__(
        self, stack: LocalServices, services: list[Service], say: Callable[[str], None]
    ) -> None:
        self.stack = stack
        self.say = say
        self.children = [_Child(s, ChildState(name=s.name)) for s in services]

    def start_all(self, now: float) -> None:
        for child in self.children:
            self._start(child, now)

    def tend(self, now: float) -> bool:
        """One look at every child; True when something changed."""
        changed = False
        for child in self.children:
            if not child.pending:
                code = self.stack.exited(child.service.name)
                if code is None:
                    continue
                how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
                self._exited(child, code, now, how)
                changed = True
            elif now >= (child.state.next_start_at or 0.0):
                child.state.restarts += 1
                try:
                    self._start(child, now)
                except InfraError as exc:  # Redis that does not answer: try again later
                    child.state.started_at = now
                    self._exited(child, 1, now, f"did not start ({exc.message})")
                changed = True
        return changed

    def _exited(self, child: _Child, code: int, now: float, how: str) -> None:
        lived = now - (child.state.started_at or now)
        child.failures = 0 if lived >= STEADY_SECONDS else child.failures + 1
        delay = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** max(0, child.failures - 1))
        child.state.pid = child.state.start_ticks = None
        child.state.last_exit = code
        child.state.next_start_at = now + delay
        child.pending = True
        self.say(f"{child.service.name} {how} after {lived:.0f} s; starting it in {delay:g} s")

    def _start(self, child: _Child, now: float) -> None:
        name = child.service.name
        if name == REDIS:
            self.stack.start_redis()  # the same port and password: clients reconnect
        else:
            self.stack.start(name, list(child.service.args))
        pid = self.stack.procs[name].pid
        child.state.pid, child.state.start_ticks = pid, start_ticks(pid)
        child.state.started_at, child.state.next_start_at = now, None
        child.pending = False
        self.say(f"{name} started (pid {pid})")


@contextmanager
def _single(data_dir: Path) -> Iterator[None]:
    """The lock that makes this the one supervisor of ``data_dir``."""
    directory = up_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"farm is already up for {data_dir}", hint="farm up --status") from None
        yield
    finally:
        os.close(fd)


def supervise(config: FarmConfig, services: list[Service]) -> None:
    """Run the supervisor in this process until SIGTERM, SIGINT or SIGHUP."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    log_dir = config.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    private = not broker_configured(config)
    with _single(config.data_dir):
        stack = LocalServices(
            config.source,
            log_dir,
            redis_persist=True,
            broker=None if private else config.broker_url,
            redis_dir=up_dir(config.data_dir) / "redis",
        )
        me = os.getpid()
        state = UpState(
            supervisor_pid=me,
            supervisor_ticks=start_ticks(me) or 0,
            config=str(config.source) if config.source else None,
            broker_url=stack.broker_url,
            private_broker=private,
            log_dir=str(log_dir),
        )
        supervisor = Supervisor(stack, services, _say)
        try:
            supervisor.start_all(time.time())
            state.ready = True
            while True:
                state.services = [c.state for c in supervisor.children]
                _write_state(config.data_dir, state)
                if stop.wait(0.5):
                    break
                supervisor.tend(time.time())
        finally:
            _say("stopping")
            stack.close()
            _state_path(config.data_dir).unlink(missing_ok=True)
            _say("stopped")


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} farm up: {message}", flush=True)


# --- the commands' side -------------------------------------------------------------------


def launch(config: FarmConfig, timeout: float = 120.0) -> UpState:
    """Start the supervisor detached from this terminal; its state once all started."""
    log_dir = config.data_dir / "logs"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the log directory {log_dir}: {exc.strerror}",
            hint="set data_dir in farm.toml to a directory you can write",
        ) from exc
    argv = [sys.executable, "-m", "farm"]
    if config.source is not None:
        argv += ["--config", str(config.source)]
    log = log_dir / "supervisor.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*argv, "up", SUPERVISOR_FLAG],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no SIGHUP when the terminal closes
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(config.data_dir)
        if state is not None and state.ready and state.supervisor_pid == proc.pid:
            return state
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-8:]
            raise InfraError(
                "farm up: the supervisor stopped at once:\n  " + "\n  ".join(tail),
                hint=f"the whole log: {log}",
            )
        time.sleep(0.2)
    raise InfraError(f"farm up: the services did not start within {timeout:g} s", hint=f"see {log}")


def shut_down(data_dir: Path, timeout: float = 60.0) -> UpState | None:
    """Stop the supervisor of ``data_dir`` and so its children; what was stopped (None:
    nothing was up). Children left behind by a supervisor that did not stop in time
    are killed, each only if it is still the very process that was started."""
    state = read_state(data_dir)
    if state is None:
        return None
    os.kill(state.supervisor_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(state.supervisor_pid, state.supervisor_ticks):
        if time.monotonic() > deadline:
            os.kill(state.supervisor_pid, signal.SIGKILL)
            for child in state.services:
                if child.pid is not None and alive(child.pid, child.start_ticks):
                    with suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)  # each child leads its session
            break
        time.sleep(0.2)
    _state_path(data_dir).unlink(missing_ok=True)
    return state
