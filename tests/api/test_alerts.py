"""POST /api/alerts: Grafana and Alertmanager notifications become bisection requests.

Payloads follow the senders' documented formats: Grafana's webhook notifier
(``version: "1"``) and Alertmanager's webhook_config (``version: "4"``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from farm.api import create_app
from farm.store import Store
from farm.store.alerts import Alert, AlertAction
from farm.store.bisect import Bisection, BisectState
from farm.store.runs import Run

from .conftest import AUTH, LEAK, TITLE, TOKEN, Scenario


def alertmanager(*alerts: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook body as documented for webhook_config (version 4)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="FarmCounterExpectationFailed"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "farm",
        "groupLabels": {"alertname": "FarmCounterExpectationFailed"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": list(alerts),
    }


def am_alert(labels: dict[str, str], fingerprint: str = "1b2c3d4e5f607182") -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "from a test"},
        "startsAt": "2026-11-26T04:10:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=farm_run_crashes",
        "fingerprint": fingerprint,
    }


def grafana(labels: dict[str, str]) -> dict[str, Any]:
    """A Grafana webhook notifier body (version 1), as in Grafana's documentation."""
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "run crashed"},
        "startsAt": "2026-11-26T05:51:03.157076+02:00",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:3000/alerting/farm-run-crashed/edit",
        "fingerprint": "c6eadffa33fcdf37",
        "silenceURL": "http://127.0.0.1:3000/alerting/silence/new",
        "dashboardURL": "",
        "panelURL": "",
        "values": {"B": 1, "C": 1},
        "valueString": "[ var='B' labels={run=1} value=1 ]",
    }
    return {
        "receiver": "farm",
        "status": "firing",
        "orgId": 1,
        "alerts": [alert],
        "groupLabels": {"alertname": labels.get("alertname", "")},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:3000/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="FarmRunCrashed"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] FarmRunCrashed",
        "state": "alerting",
        "message": "**Firing**",
    }


def bisections(store: Store) -> list[Bisection]:
    with store.session() as db:
        return list(db.scalars(select(Bisection).order_by(Bisection.id)))


def alert_rows(store: Store) -> list[Alert]:
    with store.session() as db:
        return list(db.scalars(select(Alert).order_by(Alert.id)))


def test_an_alertmanager_counter_alert_requests_one_bisection_even_when_repeated(
    client: TestClient, store: Store, scenario: Scenario
) -> None:
    body = alertmanager(
        am_alert(
            {
                "alertname": "FarmCounterExpectationFailed",
                "run": str(scenario.leaking_run),
                "host": "laptop",
                "counter": "nr_anon_partially_mapped",
            }
        )
    )
    first = client.post("/api/alerts", json=body, headers=AUTH)
    repeat = client.post("/api/alerts", json=body, headers=AUTH)

    assert first.status_code == repeat.status_code == 200
    [bisection] = bisections(store)
    assert first.json()["bisections_requested"] == [bisection.id]
    assert repeat.json()["bisections_requested"] == []
    assert repeat.json()["outcomes"][0]["repeat"] is True
    assert (bisection.run_id, bisection.series_id) == (scenario.leaking_run, scenario.series)
    assert (bisection.regression, bisection.regression_kind) == (
        "nr_anon_partially_mapped",
        "counter",
    )
    assert bisection.state == BisectState.REQUESTED
    assert bisection.requested_by == "alert:1b2c3d4e5f607182"
    [row] = alert_rows(store)
    assert (row.source, row.notifications, row.action) == (
        "alertmanager",
        2,
        AlertAction.BISECTION_REQUESTED,
    )


def test_a_grafana_crash_alert_without_a_title_bisects_the_runs_first_crash(
    client: TestClient, store: Store, scenario: Scenario
) -> None:
    labels = {
        "alertname": "FarmRunCrashed",
        "run": str(scenario.crashed_run),
        "host": "workstation",
    }

    answer = client.post("/api/alerts", json=grafana(labels), headers=AUTH)

    assert answer.status_code == 200
    [bisection] = bisections(store)
    assert (bisection.regression, bisection.regression_kind) == (TITLE, "crash")
    assert bisection.requested_by == "alert:c6eadffa33fcdf37"
    [row] = alert_rows(store)
    assert row.source == "grafana"
    assert row.starts_at.replace(tzinfo=None).isoformat() == "2026-11-26T03:51:03.157076"


def test_the_same_regression_from_both_senders_is_bisected_once(
    client: TestClient, store: Store, scenario: Scenario
) -> None:
    labels = {
        "alertname": "FarmRunCrashed",
        "run": str(scenario.crashed_run),
        "host": "workstation",
        "regression": TITLE,
    }
    client.post("/api/alerts", json=grafana(labels), headers=AUTH)
    answer = client.post("/api/alerts", json=alertmanager(am_alert(labels)), headers=AUTH)

    assert len(bisections(store)) == 1
    assert answer.json()["outcomes"][0]["action"] == "already_requested"
    assert [a.action for a in alert_rows(store)] == [
        AlertAction.BISECTION_REQUESTED,
        AlertAction.ALREADY_REQUESTED,
    ]


def test_an_alert_gets_the_bisection_the_run_s_twin_already_has_at_the_configured_confidence(
    store: Store, scenario: Scenario
) -> None:
    """Alerts request bisections the scheduler's way: a second host that failed alike
    joins the first host's bisection, and the [bisect] confidence applies."""
    with store.session() as db:
        twin = db.get(Run, scenario.leaking_run)
        assert twin is not None
        copy_of = Run(
            **{k: getattr(twin, k) for k in ("kind", "series_id", "application_id", "upto")},
            **{k: getattr(twin, k) for k in ("commit", "load", "soak_seconds", "state")},
            host="workstation",
            verdict=twin.verdict,
            ending=twin.ending,
        )
        db.add(copy_of)
        db.flush()
        other = copy_of.id
    with TestClient(create_app(store, TOKEN, confidence=0.99)) as client:
        first = am_alert({"alertname": "X", "run": str(scenario.leaking_run), "counter": LEAK})
        second = am_alert({"alertname": "X", "run": str(other), "counter": LEAK}, "f00d")
        client.post("/api/alerts", json=alertmanager(first), headers=AUTH)
        answer = client.post("/api/alerts", json=alertmanager(second), headers=AUTH)

    [bisection] = bisections(store)
    assert bisection.confidence == 0.99
    assert answer.json()["outcomes"][0]["action"] == "already_requested"
    assert answer.json()["outcomes"][0]["bisection"] == bisection.id


def test_a_new_firing_of_the_same_alert_is_a_new_occurrence_not_a_new_bisection(
    client: TestClient, store: Store, scenario: Scenario
) -> None:
    labels = {"alertname": "X", "run": str(scenario.leaking_run), "counter": LEAK}
    first = am_alert(labels)
    later = {**copy.deepcopy(first), "startsAt": "2026-11-26T09:00:00Z"}
    client.post("/api/alerts", json=alertmanager(first), headers=AUTH)
    client.post("/api/alerts", json=alertmanager(later), headers=AUTH)

    assert len(alert_rows(store)) == 2
    assert len(bisections(store)) == 1


def test_a_resolved_notification_updates_the_alert_and_starts_nothing(
    client: TestClient, store: Store, scenario: Scenario
) -> None:
    alert = am_alert({"alertname": "X", "run": str(scenario.leaking_run), "counter": LEAK})
    client.post("/api/alerts", json=alertmanager(alert), headers=AUTH)
    resolved = {**alert, "status": "resolved", "endsAt": "2026-11-26T05:00:00Z"}
    client.post("/api/alerts", json={**alertmanager(resolved), "status": "resolved"}, headers=AUTH)

    [row] = alert_rows(store)
    assert (row.status, row.notifications) == ("resolved", 2)
    assert len(bisections(store)) == 1


@pytest.mark.parametrize(
    ("labels", "action", "detail"),
    [
        ({"alertname": "Watchdog"}, AlertAction.IGNORED, "no run label"),
        ({"alertname": "X", "run": "999", "counter": "c"}, AlertAction.UNKNOWN_RUN, "no run '999'"),
        ({"alertname": "X", "run": "abc"}, AlertAction.UNKNOWN_RUN, "no run 'abc'"),
        ({"alertname": "FarmRunStuck", "run": "SOAKING"}, AlertAction.IGNORED, "not ended FAIL"),
        (
            {"alertname": "X", "run": "CRASHED", "regression": "BUG: X"},
            AlertAction.IGNORED,
            "shows no crash or counter failure named 'BUG: X'",
        ),
        (
            {"alertname": "X", "run": "LEAKING", "counter": "pgfault"},
            AlertAction.IGNORED,
            "shows no crash or counter failure named 'pgfault'",
        ),
    ],
)
def test_alerts_naming_nothing_bisectable_are_recorded_and_ignored(
    client: TestClient,
    store: Store,
    scenario: Scenario,
    labels: dict[str, str],
    action: AlertAction,
    detail: str,
) -> None:
    runs = {"LEAKING": scenario.leaking_run, "SOAKING": scenario.soaking_run}
    runs["CRASHED"] = scenario.crashed_run
    if labels.get("run") in runs:
        labels = {**labels, "run": str(runs[labels["run"]])}

    answer = client.post("/api/alerts", json=alertmanager(am_alert(labels)), headers=AUTH)

    assert answer.status_code == 200
    assert bisections(store) == []
    [row] = alert_rows(store)
    assert row.action == action
    assert detail in row.detail
    assert row.labels == labels


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["missing", "wrong", "not-bearer", "longer"],
)
def test_a_missing_or_wrong_token_is_refused_and_nothing_is_recorded(
    client: TestClient, store: Store, scenario: Scenario, headers: dict[str, str]
) -> None:
    labels = {"alertname": "X", "run": str(scenario.leaking_run), "counter": LEAK}

    answer = client.post("/api/alerts", json=alertmanager(am_alert(labels)), headers=headers)

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in answer.text
    assert alert_rows(store) == []
    assert bisections(store) == []


def test_a_malformed_notification_is_refused_with_the_bad_field(
    client: TestClient, store: Store
) -> None:
    body = alertmanager(am_alert({"alertname": "X"}))
    body["version"] = "3"
    del body["alerts"][0]["fingerprint"]

    answer = client.post("/api/alerts", json=body, headers=AUTH)

    assert answer.status_code == 422
    problems = {tuple(e["loc"]) for e in answer.json()["detail"]}
    assert ("body", "version") in problems
    assert ("body", "alerts", 0, "fingerprint") in problems
    with store.session() as db:
        assert db.scalar(select(func.count()).select_from(Alert)) == 0
