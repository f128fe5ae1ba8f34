"""Recording builds in the database: the Build row mirrors a build's metadata.json."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.build.artifacts import BuildMetadata
from farm.store.builds import Build, BuildState


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
