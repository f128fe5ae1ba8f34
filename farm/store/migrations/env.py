# SPDX-License-Identifier: Apache-2.0
"""Alembic environment: runs on the connection farm hands in, or on FARM_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

import farm.store
from farm.store.base import Base

assert farm.store  # every table module is imported, so autogenerate sees them all
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("FARM_DATABASE_URL", "sqlite:///migrations-scratch.db")
    with create_engine(url).begin() as conn:
        _run(conn)
