# SPDX-License-Identifier: Apache-2.0
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
from farm.store.runs import Run, RunState

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


def test_an_alert_naming_a_run_that_never_ran_is_refused_whatever_regression_it_names(
    client: TestClient, store: Store, scenario: Scenario
) -> None:
    with store.session() as db:
        crashed = db.get(Run, scenario.crashed_run)
        assert crashed is not None
        queued = Run(
            **{k: getattr(crashed, k) for k in ("kind", "series_id", "application_id", "upto")},
            **{k: getattr(crashed, k) for k in ("commit", "load", "soak_seconds")},
            host="laptop",
            state=RunState.QUEUED,
        )
        db.add(queued)
        db.flush()
        never_ran = queued.id
    labels = {"alertname": "X", "run": str(never_ran), "regression": "BUG: X"}

    answer = client.post("/api/alerts", json=alertmanager(am_alert(labels)), headers=AUTH)

    assert answer.status_code == 200
    assert answer.json()["bisections_requested"] == []
    assert bisections(store) == []
    [row] = alert_rows(store)
    assert row.action == AlertAction.IGNORED
    assert f"run {never_ran} has not ended FAIL (queued, verdict none yet)" in row.detail


def test_bad_alerts_are_reported_and_the_good_ones_of_their_group_still_recorded(
    client: TestClient, store: Store, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    good = am_alert({"alertname": "X", "run": str(scenario.leaking_run), "counter": LEAK}, "a1")
    huge = am_alert({"alertname": "X", "run": "100000000000000000000"}, "a2")
    superscript = am_alert({"alertname": "X", "run": "²"}, "a3")
    endless = am_alert({"alertname": "X", "run": "9" * 5000}, "a4")
    no_fingerprint = {k: v for k, v in am_alert({"alertname": "X"}).items() if k != "fingerprint"}
    naive_time = {**am_alert({"alertname": "X"}, "a5"), "startsAt": "2026-11-26T04:10:00"}
    year_one = {**am_alert({"alertname": "X"}, "a6"), "startsAt": "0001-01-01T00:00:00+05:00"}
    body = alertmanager(
        good, huge, superscript, endless, no_fingerprint, naive_time, year_one, "junk"
    )

    answer = client.post("/api/alerts", json=body, headers=AUTH)

    assert answer.status_code == 200
    [bisection] = bisections(store)
    assert answer.json()["bisections_requested"] == [bisection.id]
    outcomes = [(o["fingerprint"], o["action"], o["detail"]) for o in answer.json()["outcomes"]]
    assert outcomes == [
        ("a1", "bisection_requested", f"bisection {bisection.id} of counter '{LEAK}' requested"),
        ("a2", "unknown_run", "no run '100000000000000000000' in the store: not a run id"),
        ("a3", "unknown_run", "no run '²' in the store: not a run id"),
        ("a4", "unknown_run", f"no run '{'9' * 5000}' in the store: not a run id"),
        ("", "rejected", "alert 4 not recorded: fingerprint: Field required"),
        (
            "a5",
            "rejected",
            "alert 5 not recorded: startsAt: Value error, startsAt needs a timezone",
        ),
        ("a6", "rejected", "alert 6 not recorded: startsAt: Value error, startsAt out of range"),
        ("", "rejected", "alert 7 not recorded: not an object but str 'junk'"),
    ]
    assert [r.fingerprint for r in alert_rows(store)] == ["a1", "a2", "a3", "a4"]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [m for m in logged if "not recorded" in m] == [o[2] for o in outcomes[4:]]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'"a string"', b'{"version": "4", "status": "firing", "alerts": {}}'],
    ids=["not-json", "not-an-object", "alerts-not-a-list"],
)
def test_an_unreadable_notification_is_refused_whole(
    client: TestClient, store: Store, body: bytes
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}

    answer = client.post("/api/alerts", content=body, headers=headers)

    assert answer.status_code == 422
    assert alert_rows(store) == []
