# SPDX-License-Identifier: Apache-2.0
"""The database: engine, sessions and schema upgrades.

The database is farm's record of truth. SQLite (WAL, so readers never block the
writer) on one controller, PostgreSQL when several controllers share a farm. The
schema is owned by Alembic; ``open_store`` brings any database to the newest revision.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Dialect,
    Engine,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from farm.config import redact
from farm.errors import InfraError, UserError

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

M = TypeVar("M", bound=BaseModel)
MAX_ID = 2**63 - 1  # the largest integer SQLite and PostgreSQL (bigint) hold


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; farm stores UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Model(TypeDecorator[M]):
    """A pydantic model stored as JSON: validated on the way in and out, so readers get
    typed values, never dict keys."""

    impl = JSON
    cache_ok = True

    def __init__(self, model: type[M]) -> None:
        super().__init__()
        self.model = model

    def process_bind_param(self, value: M | None, dialect: Dialect) -> Any:
        return None if value is None else value.model_dump(mode="json", exclude_defaults=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> M | None:
        return None if value is None else self.model.model_validate(value)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[int]: JSON,
        list[float]: JSON,
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL takes a lock
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        directory = Path(url.removeprefix("sqlite:///")).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the database's directory {directory}: {exc.strerror}",
                hint="set data_dir (or database_url) in farm.toml to a directory you can write",
            ) from exc
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError) as exc:
        shown = redact(url)  # SQLAlchemy's message may quote the URL, password and all
        raise UserError(f"database_url {shown!r} is not usable: {redact(str(exc))}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, the newest by default (idempotent), one
    process at a time: workers, beat and the API open the store at once when they start,
    and the others then find nothing to do. A schema newer than this farm knows is a
    UserError. SQLite's foreign keys are off meanwhile: a migration that rebuilds a table
    would otherwise cascade the old table's DROP into every row that refers to it."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    sqlite = engine.dialect.name == "sqlite"
    try:
        with _sqlite_migration_lock(engine), engine.connect() as connection:
            if sqlite:  # a no-op inside a transaction: set before it begins
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            with connection.begin():
                if engine.dialect.name == "postgresql":  # released when this commits
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                _refuse_newer(connection, ScriptDirectory.from_config(cfg))
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    except OperationalError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        raise InfraError(f"database {shown} is not reachable: {redact(str(exc.orig))}") from exc


MIGRATION_LOCK = 0x6661726D  # "farm": the PostgreSQL advisory lock key of migrations


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """flock on ``<database>.migrate.lock``: pysqlite runs DDL outside transactions, so
    the database's own lock cannot keep two processes from creating the same table."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":  # not SQLite, or private to this process
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _refuse_newer(connection: Connection, script: ScriptDirectory) -> None:
    """A revision this farm has no migration for was written by a newer farm: say so,
    instead of alembic's "Can't locate revision" traceback."""
    from alembic.migration import MigrationContext

    known = {rev.revision for rev in script.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        shown = connection.engine.url.render_as_string(hide_password=True)
        raise UserError(
            f"the database {shown} has schema revision {', '.join(unknown)}, newer than "
            f"this farm knows (its newest is {script.get_current_head()}): upgrade farm to "
            "use it"
        )


class Store:
    """A migrated database and a session factory bound to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def exclusive(self, space: int, key: int) -> Iterator[bool]:
        """Whether this process alone does the work ``(space, key)`` now: True while it
        holds PostgreSQL's advisory lock on the pair (another process asking meanwhile
        gets False at once), released when the body ends. For work done in several
        transactions, where a row lock would block the work's own writes. SQLite: always
        True (a farm on SQLite has one controller; its beat is the only one)."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        pair = {"space": space, "key": key}
        with self.engine.connect() as connection:
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(:space, :key)"), pair
            ).scalar_one()
            connection.commit()
            try:
                yield bool(held)
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), pair)
                    connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()
