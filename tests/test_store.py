"""The store: migrations match the models, and SQLite runs in WAL mode."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from farm.store import Base, Store


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], "run scripts/regen-initial-migration after changing farm/store"


def test_sqlite_uses_wal(store: Store) -> None:
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_opening_twice_is_idempotent(store: Store) -> None:
    again = Store(store.url)
    with again.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    again.dispose()
