# SPDX-License-Identifier: Apache-2.0
"""The store: migrations match the models, and SQLite runs in WAL mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from dbfixtures import NewDatabase
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from together import together

from farm.cli import main
from farm.config import FarmConfig, redact
from farm.ending import Cause
from farm.errors import UserError
from farm.store import Base, Store
from farm.store.base import make_engine, upgrade
from farm.store.runs import Crash, Run, RunKind
from farm.store.series import Application, Patch, Series

HEAD = "0006"  # the newest migration


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], "run scripts/regen-initial-migration after changing farm/store"


def test_sqlite_uses_wal(config: FarmConfig) -> None:
    store = Store(config.db_url)
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.dispose()


def test_opening_twice_is_idempotent(store: Store) -> None:
    again = Store(store.url)
    with again.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    again.dispose()


def test_a_database_of_the_first_revision_keeps_its_runs_and_types_their_endings(
    empty_database_url: str,
) -> None:
    """Upgrading rebuilds the runs table: its crashes must survive (SQLite would cascade
    the old table's DROP into them) and old sentences become typed findings."""
    url = empty_database_url
    engine = make_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO runs (id, kind, upto, "commit", host, load, soak_seconds, state,'
                " verdict, reasons, details, attempt, created_at, updated_at) VALUES (1,"
                " 'PATCHED', 7, 'c', 'laptop', 'thp-split', 60, 'DONE', 'FAIL', :reasons,"
                " :details, 0, '2026-01-01', '2026-01-01')"
            ),
            {
                "reasons": json.dumps(
                    [
                        "crash: BUG: corrupted list in deferred_split_scan",
                        "host rebooted during the soak (boot_id a → b)",
                        "counter nr_anon_transparent_hugepages: grows 2e5/h",
                    ]
                ),
                "details": json.dumps(
                    {
                        "tree": "linux",
                        "baseline_run": 3,
                        "counter_failures": [
                            {"counter": "nr_anon_transparent_hugepages", "rule": "no-growth"}
                        ],
                    }
                ),
            },
        )
        conn.execute(
            text(
                "INSERT INTO crashes (id, run_id, host, title, alt_titles, kind, signature,"
                " corrupted, frames, report, source, seen_at) VALUES (1, 1, 'laptop', 't',"
                " '[]', 'BUG', 's', :no, '[]', 'r', 'console', '2026-01-01')"
            ),
            {"no": False},
        )
    engine.dispose()

    store = Store(url)
    with store.session() as session:
        run = session.get(Run, 1)
        assert run is not None
        assert [f.cause for f in run.ending.findings] == [
            Cause.CRASH,
            Cause.REBOOT,
            Cause.COUNTER,
        ]
        assert run.ending.findings[0].title == "BUG: corrupted list in deferred_split_scan"
        assert run.ending.failed_counters == ["nr_anon_transparent_hugepages"]
        assert run.ending.baseline_run == 3
        assert run.details == {"tree": "linux"}
        assert session.scalar(select(func.count()).select_from(Crash)) == 1
    store.dispose()


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    """Workers, beat and the API all open the store when they start: on a fresh
    database they must not all create the tables. (SQLite is locked by flock, which
    races more: three rounds; PostgreSQL by an advisory lock: one.)"""
    for round_ in range(3 if new_database.engine == "sqlite" else 1):
        url = new_database(tmp_path / f"round-{round_}", False)
        finished = together(
            "from farm.store import Store",
            f"Store({url!r}).dispose()",
            count=3,
            workdir=tmp_path / f"round-{round_}",
        )

        assert [f.stderr for f in finished if f.returncode] == [], f"round {round_}"
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (HEAD,)
            ]
        engine.dispose()


def test_a_database_newer_than_this_farm_is_refused_naming_both_revisions(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))

    with pytest.raises(UserError) as refused:
        Store(store.url)
    with pytest.raises(SystemExit) as exited:
        main(["status"])

    assert str(refused.value) == (
        f"the database {redact(store.url)} has schema revision 0099, newer than this farm knows "
        f"(its newest is {HEAD}): upgrade farm to use it"
    )
    assert exited.value.code == 1
    assert capsys.readouterr().err == f"farm: error: {refused.value}\n"


def test_a_series_stored_twice_before_series_identity_is_merged_into_the_first(
    empty_database_url: str,
) -> None:
    """Databases written before revision 0003 may hold one series twice (two submits
    raced); upgrading keeps the first row and moves the twin's applications and runs."""
    url = empty_database_url
    engine = make_engine(url)
    upgrade(engine, "0002")
    with Session(engine) as session, session.begin():
        for n in (1, 2):
            series = Series(title="mm: thp", total=1, source="t.mbox", content_hash="same")
            app = Application(series=series, tree="/srv/linux", base_commit="b", branch=f"b{n}")
            session.add(app)
            session.flush()
            session.execute(  # the patches table as it was at 0002 (the model has grown)
                text(
                    'INSERT INTO patches (series_id, "index", subject, full_subject, '
                    '"references", author, "to", cc, files, raw) '
                    "VALUES (:series, 1, 's', 's', '[]', 'a', '[]', '[]', '[]', :raw)"
                ),
                {"series": series.id, "raw": b""},
            )
            session.add(
                Run(
                    kind=RunKind.PATCHED,
                    series_id=series.id,
                    application_id=app.id,
                    upto=1,
                    commit="c",
                    host="laptop",
                    load="thp",
                    soak_seconds=60,
                )
            )
    engine.dispose()

    store = Store(url)
    with store.session() as session:
        [series] = session.scalars(select(Series)).all()
        assert series.id == 1
        assert [a.branch for a in series.applications] == ["b1", "b2"]
        assert [r.series_id for r in session.scalars(select(Run))] == [1, 1]
        assert session.scalar(select(func.count()).select_from(Patch)) == 1
    store.dispose()
