# SPDX-License-Identifier: Apache-2.0
"""Fixtures shared by every test module. Stage-specific fixtures live beside their tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dbfixtures import NewDatabase, Postgres, database_toml_line, fresh_database
from kernel_fixtures import kernel_build_env, linux_tree, soak_kernel  # noqa: F401

from farm.config import FarmConfig, load_config
from farm.services import LocalPostgres
from farm.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"  # a copy of ../shared/corpus: CI clones have only the repo


# -- the database: every test that takes `store` runs on SQLite and on PostgreSQL


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Started by the first test that needs it, stopped at the end of the session."""
    with LocalPostgres() as cluster:
        yield Postgres(cluster)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A fresh migrated database on each engine: its URL, None for farm's default (a
    SQLite file under data_dir). farm_toml writes it into farm.toml, so workers and the
    CLI started by the test use it too."""
    yield from fresh_database(request, Postgres.TEMPLATE)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database without tables on each engine, for migration tests."""
    for url in fresh_database(request, "template0"):
        yield url or f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest) -> Iterator[NewDatabase]:
    """For tests that need several databases (races repeated in rounds): a maker of
    fresh databases on each engine."""
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    maker = NewDatabase(request.param, postgres)
    yield maker
    maker.drop_all()


@pytest.fixture
def farm_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """An empty farm.toml in a private directory; FARM_* variables cleared."""
    for name in ("FARM_CONFIG", "FARM_DATABASE_URL", "FARM_BROKER_URL", "FARM_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "farm.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n{database_toml_line(request)}')
    monkeypatch.setenv("FARM_CONFIG", str(path))
    return path


@pytest.fixture
def config(farm_toml: Path) -> FarmConfig:
    return load_config(farm_toml)


@pytest.fixture
def store(config: FarmConfig, database_url: str | None) -> Iterator[Store]:
    """The test's store, on SQLite and on PostgreSQL (the test runs once on each)."""
    assert config.db_url == (database_url or config.db_url), "farm.toml lacks database_url"
    store = Store(config.db_url)
    yield store
    store.dispose()


# -- per-group times, printed at the end of every run (`make test` shows where time goes)

_GROUP_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    group = "/".join(report.nodeid.split("::")[0].split("/")[:2])
    _GROUP_SECONDS[group] = _GROUP_SECONDS.get(group, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _GROUP_SECONDS:
        return
    terminalreporter.section("time per test group (setup + call + teardown)")
    for group, seconds in sorted(_GROUP_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {group}")
    terminalreporter.write_line(f"{sum(_GROUP_SECONDS.values()):8.1f} s  in all")
