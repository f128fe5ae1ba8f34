# SPDX-License-Identifier: Apache-2.0
"""A private scheduler stack on this machine: redis-server, Celery workers and beat, and
a private PostgreSQL cluster (``LocalPostgres``) for what runs on PostgreSQL.

Used by ``make demo`` and the tests. Redis listens on loopback only, on a free port,
with a random password that lives only in the environment of our own processes.
(A unix socket would be tighter, but kombu's ``redis+socket`` transport crashes the
worker when the broker restarts: ``restore_unacked`` reads ``conninfo.hostname`` of
None. TCP reconnects cleanly.) Workers and beat are ``farm worker`` / ``farm beat``
subprocesses with
``FARM_CONFIG`` and ``FARM_BROKER_URL`` set, so they run exactly the code users run.
Every process is started in its own session and stopped by its pid.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from farm.errors import InfraError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_args(name: str, hosts: list[str] | None = None, concurrency: int = 0) -> list[str]:
    """``farm worker`` arguments of a worker called ``name`` serving ``hosts``."""
    args = ["worker", "--name", name]
    if hosts:
        args += ["--hosts", ",".join(hosts)]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    return args


class LocalServices:
    """``with LocalServices(config_path, log_dir) as stack:`` starts Redis; workers and
    beat are started on demand and everything is stopped on exit.

    With ``broker``, that broker is used and no Redis is started. ``redis_dir`` keeps
    Redis's files (default: a temporary directory removed at the end). Without a
    ``config_path`` the children read the configuration as farm does by default.
    ``bind`` is the address Redis listens on (loopback unless a test network needs
    another)."""

    def __init__(
        self,
        config_path: Path | None,
        log_dir: Path,
        *,
        redis_persist: bool = False,
        broker: str | None = None,
        redis_dir: Path | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        self.config_path = config_path
        self.bind = bind
        self.log_dir = log_dir
        self.redis_persist = redis_persist
        self.broker = broker
        self.own_redis_dir = redis_dir is None
        self.redis_dir = redis_dir or Path(tempfile.mkdtemp(prefix="farm-redis-"))
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def broker_url(self) -> str:
        return self.broker or f"redis://:{self.password}@{self.bind}:{self.port}/0"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "FARM_BROKER_URL": self.broker_url, "PYTHONUNBUFFERED": "1"}
        if self.config_path is not None:
            env["FARM_CONFIG"] = str(self.config_path)
        return env

    # --- redis ---------------------------------------------------------------------

    def start_redis(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise InfraError("redis-server is not installed", hint="make apt")
        persist = ["--appendonly", "yes"] if self.redis_persist else ["--save", ""]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The password is in a file only we can read, never on a command line.
        conf = self.redis_dir / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text(f"requirepass {self.password}\n")
        argv = [server, str(conf), "--bind", self.bind, "--port", str(self.port)]
        self._spawn("redis", [*argv, "--dir", str(self.redis_dir), *persist])
        deadline = time.monotonic() + 20
        client = redis.Redis(host=self.bind, port=self.port, password=self.password)
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise InfraError(f"redis-server did not answer on {self.bind}:{self.port} within 20 s")

    def stop_redis(self) -> None:
        self.stop("redis")

    def restart_redis(self, downtime: float = 0.0) -> None:
        self.stop_redis()
        time.sleep(downtime)
        self.start_redis()

    # --- celery processes ------------------------------------------------------------

    def start(self, name: str, farm_args: list[str]) -> subprocess.Popen[bytes]:
        """``farm FARM_ARGS`` as the process ``name``, logging to ``<log_dir>/<name>.log``."""
        return self._spawn(name, [sys.executable, "-m", "farm", *farm_args])

    def start_worker(self, name: str, hosts: list[str] | None = None, concurrency: int = 0) -> None:
        self.start(name, worker_args(name, hosts, concurrency))

    def start_beat(self) -> None:
        self.start("beat", ["beat"])

    def exited(self, name: str) -> int | None:
        """The exit status of ``name`` if it has ended (a negative signal number if
        killed), None while it runs."""
        return self.procs[name].poll()

    def kill(self, name: str) -> None:
        """SIGKILL, no goodbye: what a crashed controller looks like."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, name: str, timeout: float = 15.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for name in [n for n in self.procs if n != "redis"]:
            self.stop(name)
        self.stop("redis")
        if self.own_redis_dir:
            shutil.rmtree(self.redis_dir, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        if name in self.procs and self.procs[name].poll() is None:
            raise InfraError(f"{name} is already running (pid {self.procs[name].pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def __enter__(self) -> LocalServices:
        if self.broker is None:
            self.start_redis()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LocalPostgres:
    """``with LocalPostgres() as pg:`` runs a private PostgreSQL cluster in a temporary
    directory (initdb + pg_ctl from Debian's ``postgresql``; no system service), listening
    on ``host`` (loopback by default) on a free port, with a random superuser password;
    ``clients`` (a network, e.g. ``10.77.0.0/24``) may connect too, with that password.

    PostgreSQL refuses to run as root: as root, the server runs as ``run_as`` (Debian's
    ``postgres`` user), through runuser. It is tuned for tests, not durability (no
    fsync): a crash of the machine loses the cluster, which is temporary anyway."""

    def __init__(
        self, *, host: str = "127.0.0.1", clients: str | None = None, run_as: str = "postgres"
    ) -> None:
        self.host = host
        self.clients = clients
        self.port = free_port()
        self.user = "farm"
        self.password = secrets.token_hex(16)
        self.root = Path(tempfile.mkdtemp(prefix="farm-pg-"))
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(run_as)
            except KeyError as exc:
                raise InfraError(
                    f"PostgreSQL cannot run as root and there is no user {run_as!r} to run it",
                    hint="make apt (Debian's postgresql package creates the postgres user)",
                ) from exc
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._prefix = ["runuser", "-u", run_as, "--"]

    def url(self, database: str) -> str:
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def start(self) -> None:
        bindir = _postgres_bindir()
        data, pwfile = self.root / "data", self.root / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self.password)
        os.chown(pwfile, self.root.stat().st_uid, self.root.stat().st_gid)
        self._as_owner(
            [f"{bindir}/initdb", "-D", str(data), "-U", self.user, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]
        )  # fmt: skip
        pwfile.unlink()
        if self.clients:  # initdb lets in loopback only
            with (data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.clients} scram-sha-256\n")
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.root / "postgres.log"
        self._as_owner(
            [f"{bindir}/pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l", str(log),
             "-o", options]
        )  # fmt: skip

    def stop(self) -> None:
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            self._as_owner(
                [f"{_postgres_bindir()}/pg_ctl", "stop", "-D", str(data), "-m", "immediate"]
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """One statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
        ) as connection:
            connection.execute(sql.encode())

    def _as_owner(self, argv: list[str]) -> None:
        done = subprocess.run([*self._prefix, *argv], capture_output=True, text=True, check=False)
        if done.returncode:
            raise InfraError(f"{argv[0]} failed (exit {done.returncode}): {done.stderr.strip()}")

    def __enter__(self) -> LocalPostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _postgres_bindir() -> str:
    """Debian installs the server outside $PATH, one directory per major version."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if not found:
        raise InfraError("PostgreSQL's server is not installed", hint="make apt")
    return str(Path(found[-1]).parent)


def _major_version(initdb: str) -> int:
    version = Path(initdb).parent.parent.name
    return int(version) if version.isdigit() else 0
