# SPDX-License-Identifier: Apache-2.0
"""GET /api/*: read-only JSON views of series, runs and bisections; /healthz."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from farm.store import Store
from farm.store.bisect import Bisection

from .conftest import AUTH, TITLE, Scenario


def test_healthz_needs_no_token(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_every_view_needs_the_token(client: TestClient, scenario: Scenario) -> None:
    for path in (
        "/api/series",
        "/api/runs",
        f"/api/runs/{scenario.crashed_run}",
        "/api/bisections",
    ):
        assert client.get(path).status_code == 401, path


def test_series_lists_and_shows_patches_and_runs(client: TestClient, scenario: Scenario) -> None:
    [listed] = client.get("/api/series", headers=AUTH).json()
    shown = client.get(f"/api/series/{scenario.series}", headers=AUTH).json()

    assert listed["title"] == shown["title"] == "mm: split underused THPs"
    assert shown["patches"] == []
    assert [r["id"] for r in shown["runs"]] == [
        scenario.crashed_run,
        scenario.leaking_run,
        scenario.soaking_run,
    ]


def test_runs_filter_by_state_and_host_and_show_crashes(
    client: TestClient, scenario: Scenario
) -> None:
    soaking = client.get("/api/runs", params={"state": "soaking"}, headers=AUTH).json()
    on_workstation = client.get("/api/runs", params={"host": "workstation"}, headers=AUTH).json()
    run = client.get(f"/api/runs/{scenario.crashed_run}", headers=AUTH).json()

    assert [r["id"] for r in soaking] == [scenario.soaking_run]
    assert [r["id"] for r in on_workstation] == [scenario.crashed_run]
    assert [c["title"] for c in run["crashes"]] == [TITLE]
    assert run["ending"]["findings"][0]["cause"] == "crash"  # typed, not a sentence to parse


def test_bisections_list_and_show(client: TestClient, store: Store, scenario: Scenario) -> None:
    with store.session() as db:
        db.add(Bisection(run_id=scenario.crashed_run, regression=TITLE, requested_by="cli"))

    [listed] = client.get("/api/bisections", params={"state": "requested"}, headers=AUTH).json()
    shown = client.get(f"/api/bisections/{listed['id']}", headers=AUTH).json()

    assert (shown["regression"], shown["state"], shown["runs"]) == (TITLE, "requested", [])
    assert client.get("/api/bisections", params={"state": "done"}, headers=AUTH).json() == []


def test_unknown_ids_and_bad_filters_say_what_is_wrong(client: TestClient) -> None:
    missing = client.get("/api/runs/4242", headers=AUTH)
    bad_state = client.get("/api/runs", params={"state": "melting"}, headers=AUTH)

    assert (missing.status_code, missing.json()) == (404, {"detail": "no run 4242"})
    assert bad_state.status_code == 422
    assert "melting" in bad_state.text


BEYOND_ANY_ID = str(2**63)  # past SQLite's and PostgreSQL's largest integer


@pytest.mark.parametrize(
    "path",
    [
        f"/api/runs/{BEYOND_ANY_ID}",
        "/api/runs/100000000000000000000",
        f"/api/series/{BEYOND_ANY_ID}",
        f"/api/bisections/{BEYOND_ANY_ID}",
        f"/api/runs?offset={BEYOND_ANY_ID}",
        f"/api/runs?series={BEYOND_ANY_ID}",
        f"/api/series?offset={BEYOND_ANY_ID}",
        f"/api/bisections?offset={BEYOND_ANY_ID}",
        "/api/runs/²",
        "/api/runs?limit=100000000000000000000",
    ],
)
def test_ids_and_offsets_beyond_any_row_are_refused_not_crashed_on(
    client: TestClient, path: str
) -> None:
    answer = client.get(path, headers=AUTH)

    assert answer.status_code == 422
    assert answer.json()["detail"]
