# SPDX-License-Identifier: Apache-2.0
"""Build once, boot many: a kernel build is its own job on the ``farm.build`` queue.

A run in ``building`` asks for its kernel by key, (commit, config hash), and steps
again shortly until the artefacts are there; it never waits inside a step, so its
host's lease is held only for those short looks. The first to ask inserts the
``builds`` row ``requested`` (the unique key makes it the only one, however many runs
and workers ask at once) and sends the job. A worker that serves the build queue
(``[worker] build``) claims the row with a conditional UPDATE (one claimant wins, on
SQLite and PostgreSQL alike), builds in its own data directory and records the
outcome: ``ok`` with the artefacts' directory and checksums, or ``failed`` with the
fault (``kernel``: the tree does not build, every waiting run ends FAIL; ``infra``:
ours, asked again within the run's infrastructure retries).

The worker that boots the kernel uses its own copy when it has one, else the builder's
directory when that is on this machine, else fetches it over rsync/SSH from the
builder's ``artefact_address`` and checks every file's sha256 before it is used.

A job that was lost is sent again by the runs that wait for it: a row still
``requested`` after ``overdue_seconds``, or ``building`` by a worker whose heartbeat
stopped (killed mid-build), is put back and re-sent; the claim drops duplicates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from farm.build import kconfig
from farm.build.artifacts import KernelArtifacts, artifacts_dir, cached_build
from farm.build.tree import file_lock
from farm.config import FarmConfig
from farm.errors import FarmBug, FarmError, InfraError, KernelError
from farm.git import resolve
from farm.scheduler.app import send_build
from farm.scheduler.workers import beating
from farm.store import Store
from farm.store.base import as_utc, utcnow
from farm.store.builds import Build, BuildState, record_build
from farm.store.workers import Worker

log = logging.getLogger(__name__)


class BuildRequest(BaseModel):
    """What to build, as the job carries it (``builds.request``): the commit of a tree,
    configured from ``base`` and ``fragment``; ``earlier`` patches are built first, one
    by one ([build] check_each_patch)."""

    tree: str
    tree_name: str | None = None
    commit: str
    config_hash: str
    fragment: str | None = None
    base: dict[str, str] = {}
    earlier: list[tuple[int, str]] = []

    @classmethod
    def of(
        cls,
        tree: Path,
        commit: str,
        *,
        fragment: Path | None,
        base: kconfig.BaseConfig,
        earlier: list[tuple[int, str]],
        tree_name: str | None = None,
    ) -> BuildRequest:
        options = kconfig.read_fragment(fragment or kconfig.default_fragment())
        return cls(
            tree=str(tree),
            tree_name=tree_name,
            commit=resolve(tree, commit),
            config_hash=kconfig.config_hash(options, base),
            fragment=str(fragment) if fragment else None,
            base=dataclasses.asdict(base),
            earlier=earlier,
        )

    def base_config(self) -> kconfig.BaseConfig:
        return kconfig.BaseConfig(**self.base)  # type: ignore[arg-type]


# --- the side that waits ----------------------------------------------------------------


def artefacts(config: FarmConfig, store: Store, request: BuildRequest) -> KernelArtifacts | None:
    """The kernel of ``request`` on this machine, or None while it is being built.
    A build the tree fails is a KernelError, as it is when built inline."""
    local = artifacts_dir(config.data_dir, request.commit, request.config_hash)
    if hit := cached_build(local):  # built here, or fetched for an earlier run
        return hit
    row = ask(config, store, request)
    if row.state == BuildState.OK:
        with file_lock(local.parent / f".{local.name}.lock"):  # two runs, one fetch
            return cached_build(local) or fetch(config, store, row, local)
    if row.state == BuildState.FAILED:
        if row.fault == "kernel":
            raise KernelError(row.error or f"{request.commit[:12]} does not build")
        again(store, row)  # ours: build it again, counted as one of the run's retries
        raise InfraError(f"build of {request.commit[:12]} failed on {row.builder}: {row.error}")
    if row.state == BuildState.REQUESTED and _unserved(config, store, row):
        raise InfraError(
            f"build {row.id} of {request.commit[:12]} has waited "
            f"{config.scheduler.overdue_seconds:.0f} s and no live worker serves the build queue",
            hint="start `farm worker --build` on a machine with the kernel tree",
        )
    return None


def ask(config: FarmConfig, store: Store, request: BuildRequest) -> Build:
    """The build row of ``request``'s key, inserted (and its job sent) by the first to
    ask; a job that looks lost is sent again."""
    with store.session() as session:
        inserted = _insert(session, request)
        row = session.scalar(_by_key(request.commit, request.config_hash))
        assert row is not None
        session.expunge(row)
    if inserted:
        log.info("build %s of %s requested", row.id, request.commit[:12])
        send_build(row.id)
    elif _lost(config, store, row) and again(store, row):
        log.warning("build %s (%s) looked lost; sent again", row.id, row.state)
    return row


def again(store: Store, row: Build) -> bool:
    """Put ``row`` back to ``requested`` and send its job, unless someone changed it
    since it was read (then they have acted)."""
    with store.session() as session:
        reset = session.execute(
            update(Build)
            .where(Build.id == row.id, Build.updated_at == row.updated_at)
            .values(state=BuildState.REQUESTED, builder=None, error=None, fault=None)
        )
        if reset.rowcount != 1:  # type: ignore[attr-defined]
            return False
    send_build(row.id)
    return True


def _insert(session: Session, request: BuildRequest) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True for the one caller whose row went in."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    statement = (
        dialect.insert(Build)
        .values(
            commit=request.commit,
            config_hash=request.config_hash,
            state=BuildState.REQUESTED,
            artifacts_dir="",
            incremental=False,
            request=request.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["commit", "config_hash"])
        .returning(Build.id)
    )
    return session.execute(statement).scalar() is not None


def _by_key(commit: str, config_hash: str) -> Select[Build]:
    return select(Build).where(Build.commit == commit, Build.config_hash == config_hash)


def _lost(config: FarmConfig, store: Store, row: Build) -> bool:
    """A job nobody took for ``overdue_seconds``, or one whose builder stopped beating."""
    sched = config.scheduler
    age = (utcnow() - as_utc(row.updated_at)).total_seconds()
    if row.state == BuildState.REQUESTED:
        return age > sched.overdue_seconds
    if row.state != BuildState.BUILDING or row.builder is None:
        return False
    with store.session() as session:
        builder = session.get(Worker, row.builder)
        beat = builder.heartbeat_at if builder else None
    if beat is None:  # the builder's record is gone: judge by the row's own age
        return age > 3 * sched.heartbeat_seconds
    return not beating(beat, sched.heartbeat_seconds, utcnow())


def _unserved(config: FarmConfig, store: Store, row: Build) -> bool:
    """A request nobody took for ``overdue_seconds`` while no worker that builds beats:
    waiting longer would wait forever."""
    sched = config.scheduler
    now = utcnow()
    if (now - as_utc(row.updated_at)).total_seconds() <= sched.overdue_seconds:
        return False
    with store.session() as session:
        builders = session.scalars(select(Worker.heartbeat_at).where(Worker.builds)).all()
    return not any(beating(beat, sched.heartbeat_seconds, now) for beat in builders)


def fetch(config: FarmConfig, store: Store, row: Build, local: Path) -> KernelArtifacts:
    """The finished build ``row`` in this worker's ``local`` directory: the builder's
    own directory when it is on this machine, else a checked copy fetched over SSH."""
    from farm.hosts.rsync import SshSource, pull

    with store.session() as session:
        builder = session.get(Worker, row.builder) if row.builder else None
        address = builder.artefact_address if builder else None
    if address is None:  # a builder on this machine: its directory is ours to read
        if hit := cached_build(Path(row.artifacts_dir)):
            return hit
        raise InfraError(
            f"build {row.id} is in {row.artifacts_dir} on {row.builder}, "
            "which is not on this machine and gives no artefact_address",
            hint="set [worker] artefact_address in the builder's farm.toml",
        )
    local.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{local.name}.fetch.", dir=local.parent))
    try:
        pull(
            SshSource.parse(address),
            row.artifacts_dir,
            staging,
            data_dir=config.data_dir,
            timeout=config.worker.fetch_timeout,
        )
        verify_copy(staging, row.files or {}, f"{row.builder}:{row.artifacts_dir}")
        _publish(staging, local)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("build %s fetched from %s to %s", row.id, row.builder, local)
    hit = cached_build(local)
    if hit is None:
        raise FarmBug(f"{local}: fetched build {row.id} has no finished metadata")
    return hit


def verify_copy(directory: Path, files: dict[str, str], source: str) -> None:
    if not files:
        raise InfraError(f"build at {source} lists no checksums: cannot check a copy")
    for name, digest in files.items():
        path = directory / name
        if not path.is_file() or _sha256(path) != digest:
            raise InfraError(f"{name} fetched from {source} does not match its sha256")


def _publish(staging: Path, local: Path) -> None:
    """Rename the checked copy into place; another fetch that got there first wins."""
    try:
        staging.rename(local)
    except OSError:
        if not (local / "metadata.json").exists():
            raise


def checksums(directory: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(directory.iterdir()) if p.is_file()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the build worker ---------------------------------------------------------------------


def run(config: FarmConfig, store: Store, build_id: int, worker: str) -> BuildState | None:
    """The job: claim build ``build_id`` for ``worker``, build it here, record the
    outcome. None when another worker has it (or it is done): a duplicate job."""
    request = claim(store, build_id, worker)
    if request is None:
        return None
    log.info("build %s: %s on %s", build_id, request.commit[:12], worker)
    try:
        built = _build(config, request, build_id)
    except KernelError as exc:
        return _failed(store, build_id, "kernel", exc.message)
    except FarmError as exc:
        return _failed(store, build_id, "infra", exc.message)
    except Exception as exc:  # a bug of ours: the waiting runs must not wait for ever
        _failed(store, build_id, "infra", f"farm bug: {exc!r}")
        raise
    if built.config_hash != request.config_hash:
        raise FarmBug(
            f"build {build_id}: asked for {request.config_hash}, built {built.config_hash}"
        )
    with store.session() as session:
        row = record_build(session, built.dir)
        assert row is not None and row.id == build_id
        row.builder, row.files = worker, checksums(built.dir)
    return BuildState.OK


def claim(store: Store, build_id: int, worker: str) -> BuildRequest | None:
    """Take a requested build (or re-take our own, redelivered after a restart)."""
    with store.session() as session:
        claimed = session.execute(
            update(Build)
            .where(
                Build.id == build_id,
                or_(
                    Build.state == BuildState.REQUESTED,
                    and_(Build.state == BuildState.BUILDING, Build.builder == worker),
                ),
            )
            .values(state=BuildState.BUILDING, builder=worker)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(Build, build_id)
        assert row is not None and row.request is not None
        return BuildRequest.model_validate(row.request)


def _build(config: FarmConfig, request: BuildRequest, build_id: int) -> KernelArtifacts:
    from farm.build.builder import build_kernel, check_each_patch
    from farm.build.sandbox import for_config

    named = config.tree(request.tree_name) if request.tree_name else None
    tree = named.path if named else Path(request.tree)
    common: dict[str, Any] = {
        "data_dir": config.data_dir,
        "fragment": Path(request.fragment) if request.fragment else None,
        "sandbox": for_config(config),
        "progress": lambda msg: log.info("build %s: %s", build_id, msg),
        "base": request.base_config(),
        "jobs": config.worker.build_jobs,
        "ccache_dir": config.worker.ccache_dir,
    }
    if request.earlier:
        check_each_patch(tree, request.earlier, **common)
    return build_kernel(tree, request.commit, **common)


def _failed(store: Store, build_id: int, fault: str, error: str) -> BuildState:
    log.warning("build %s failed (%s): %s", build_id, fault, error)
    with store.session() as session:
        session.execute(
            update(Build)
            .where(Build.id == build_id)
            .values(state=BuildState.FAILED, fault=fault, error=error)
        )
    return BuildState.FAILED
