# SPDX-License-Identifier: Apache-2.0
"""The databases of the tests: SQLite files, and databases in the session's private
PostgreSQL cluster (farm.services.LocalPostgres). The fixtures are in conftest.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.services import LocalPostgres
from farm.store import Store

_DATABASE_NAMES = itertools.count(1)


class Postgres:
    """The session's private PostgreSQL cluster, and a migrated database to copy: a
    test's fresh database is a CREATE DATABASE ... TEMPLATE away (tens of ms) instead of
    a migration run."""

    TEMPLATE = "farm_template"

    def __init__(self, cluster: LocalPostgres) -> None:
        self.cluster = cluster
        cluster.execute(f"CREATE DATABASE {self.TEMPLATE}")
        Store(cluster.url(self.TEMPLATE)).dispose()  # no session may stay: it is copied

    def create(self, template: str) -> str:
        name = f"test_{next(_DATABASE_NAMES)}"
        self.cluster.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    def drop(self, name: str) -> None:
        self.cluster.execute(f"DROP DATABASE {name} WITH (FORCE)")  # workers may linger


class NewDatabase:
    """``make(directory)``: a fresh database on ``engine``, migrated unless told; SQLite's
    file is <directory>/data/farm.db (farm's default for data_dir = <directory>/data)."""

    def __init__(self, engine: str, postgres: Postgres | None) -> None:
        self.engine, self.postgres = engine, postgres
        self.made: list[str] = []

    def __call__(self, directory: Path, migrated: bool = True) -> str:
        if self.postgres is None:
            return f"sqlite:///{directory / 'data' / 'farm.db'}"
        self.made.append(self.postgres.create(Postgres.TEMPLATE if migrated else "template0"))
        return self.postgres.cluster.url(self.made[-1])

    def drop_all(self) -> None:
        for name in self.made if self.postgres else []:
            self.postgres.drop(name)


def fresh_database(request: pytest.FixtureRequest, template: str) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # farm's default: <data_dir>/farm.db, fresh in every tmp_path
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    name = postgres.create(template)
    yield postgres.cluster.url(name)
    postgres.drop(name)


def database_toml_line(request: pytest.FixtureRequest) -> str:
    """The database_url line of the test's farm.toml: empty unless the test runs on
    PostgreSQL (through `store`, `soak_store` or `database_url`)."""
    if "database_url" not in request.fixturenames:
        return ""
    url = request.getfixturevalue("database_url")
    return f'database_url = "{url}"\n' if url else ""
