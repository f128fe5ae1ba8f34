# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the API: a store with one series, runs and a crash, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from farm.api import create_app
from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.series import Application, AppliedCommit, Series

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TITLE = "BUG: corrupted list in deferred_split_scan"


LEAK = "nr_anon_partially_mapped"


@dataclass(frozen=True)
class Scenario:
    series: int
    crashed_run: int  # patched run on the workstation that crashed (FAIL)
    leaking_run: int  # patched run on the laptop that failed a counter (FAIL), no crash
    soaking_run: int  # patched run still soaking: no verdict yet


def make_scenario(store: Store) -> Scenario:
    """A 7-patch series applied as one commit per patch, and its runs as the soak
    pipeline writes them."""
    with store.session() as db:
        series = Series(
            title="mm: split underused THPs", total=7, source="t.mbox", content_hash="h"
        )
        app = Application(series=series, tree="/srv/linux", base_commit="b" * 40, branch="b")
        app.commits = [AppliedCommit(index=k, sha=f"{k:02d}" * 20) for k in range(1, 8)]
        db.add(app)
        db.flush()
        common = {
            "series_id": series.id,
            "application_id": app.id,
            "upto": 7,
            "commit": "07" * 20,
            "load": "thp",
            "soak_seconds": 43200,
            "kind": RunKind.PATCHED,
        }
        crashed = Run(
            host="workstation",
            state=RunState.DONE,
            verdict=Verdict.FAIL,
            ending=RunEnding(findings=[Finding(cause=Cause.CRASH, text=f"crash: {TITLE}")]),
            **common,
        )
        leaking = Run(
            host="laptop",
            state=RunState.DONE,
            verdict=Verdict.FAIL,
            ending=RunEnding(
                findings=[Finding(cause=Cause.COUNTER, text=f"counter {LEAK}: grows", counter=LEAK)]
            ),
            **common,
        )
        soaking = Run(host="desktop", state=RunState.SOAKING, **common)
        db.add_all([crashed, leaking, soaking])
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
        return Scenario(series.id, crashed.id, leaking.id, soaking.id)


@pytest.fixture
def scenario(store: Store) -> Scenario:
    return make_scenario(store)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, TOKEN)) as client:
        yield client
