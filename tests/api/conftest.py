"""Fixtures for the API: a store with one series, runs and a crash, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from farm.api import create_app
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.series import Series

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TITLE = "BUG: corrupted list in deferred_split_scan"


@dataclass(frozen=True)
class Scenario:
    series: int
    crashed_run: int  # patched run on the workstation that crashed
    leaking_run: int  # patched run on the laptop, no crash


def make_scenario(store: Store) -> Scenario:
    with store.session() as db:
        series = Series(
            title="mm: split underused THPs", total=7, source="t.mbox", content_hash="h"
        )
        db.add(series)
        db.flush()
        common = {"series_id": series.id, "upto": 7, "commit": "c0ffee", "load": "thp"}
        crashed = Run(
            kind=RunKind.PATCHED,
            host="workstation",
            state=RunState.DONE,
            soak_seconds=43200,
            **common,
        )
        leaking = Run(
            kind=RunKind.PATCHED,
            host="laptop",
            state=RunState.SOAKING,
            soak_seconds=43200,
            **common,
        )
        db.add_all([crashed, leaking])
        db.flush()
        db.add(
            Crash(
                run_id=crashed.id,
                host="workstation",
                title=TITLE,
                kind="BUG",
                signature="s1",
                report="kernel BUG at lib/list_debug.c:65!",
            )
        )
        return Scenario(series.id, crashed.id, leaking.id)


@pytest.fixture
def scenario(store: Store) -> Scenario:
    return make_scenario(store)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, TOKEN)) as client:
        yield client
