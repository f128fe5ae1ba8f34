# SPDX-License-Identifier: Apache-2.0
"""The table of kernel builds: one row per (commit, config hash).

A build is its own job (farm.scheduler.builds): a run that needs a kernel inserts the
row ``requested`` with what to build (``request``), the unique key making it the only
one; a build worker claims it (``building``, ``builder``) and leaves it ``ok`` with the
artefacts' directory on its machine and their sha256 (``files``), or ``failed``.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Enum, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from farm.build.artifacts import BuildMetadata
from farm.store.base import Base, utcnow


class BuildState(enum.StrEnum):
    REQUESTED = "requested"
    BUILDING = "building"
    OK = "ok"
    FAILED = "failed"


class Build(Base):
    """A kernel build. ``fault`` says whose a failure is: ``kernel`` (the tree does not
    build, a finding) or ``infra`` (ours, retried)."""

    __tablename__ = "builds"
    __table_args__ = (UniqueConstraint("commit", "config_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    commit: Mapped[str] = mapped_column(String(64), index=True)
    config_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[BuildState] = mapped_column(
        Enum(BuildState, native_enum=False, length=16), default=BuildState.BUILDING
    )
    artifacts_dir: Mapped[str] = mapped_column(Text)
    release: Mapped[str | None] = mapped_column(Text)
    build_id: Mapped[str | None] = mapped_column(String(64))
    duration_seconds: Mapped[float | None]
    incremental: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    fault: Mapped[str | None] = mapped_column(String(8))
    builder: Mapped[str | None] = mapped_column(String(128), doc="the worker that built it")
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="what to build")
    files: Mapped[dict[str, str] | None] = mapped_column(JSON, doc="artefact name: sha256")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def record_build(session: Session, directory: Path) -> Build | None:
    """Insert or update the Build row of the artefacts in ``directory`` (None when the
    build left no metadata, e.g. it stopped before starting make)."""
    meta = BuildMetadata.read(directory)
    if meta is None:
        return None
    row = session.scalar(
        select(Build).where(Build.commit == meta.commit, Build.config_hash == meta.config_hash)
    )
    if row is None:
        row = Build(commit=meta.commit, config_hash=meta.config_hash, artifacts_dir=str(directory))
        session.add(row)
    row.state = BuildState(meta.state)
    row.artifacts_dir = str(directory)
    row.release = meta.release
    row.build_id = meta.build_id
    row.duration_seconds = meta.duration_seconds
    row.incremental = meta.incremental
    row.error = meta.error
    row.fault = meta.fault
    session.flush()
    return row
