# SPDX-License-Identifier: Apache-2.0
"""A real Alertmanager delivers farm's alerts to a real `farm api`, which queues one
bisection however often the alert is re-sent; a wrong or missing token is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from netutil import free_port
from sqlalchemy import select

from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.store import Store
from farm.store.alerts import Alert, AlertAction
from farm.store.bisect import Bisection
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.series import Application, AppliedCommit, Series

from .conftest import DEPLOY, FARM, TOKEN, farm_env, service, wait_until, write_yaml

pytestmark = pytest.mark.slow
CRASH = "BUG: corrupted list in deferred_split_scan"


@dataclass(frozen=True)
class Api:
    url: str
    store: Store
    run_id: int


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`farm api` under uvicorn on a free port, over a store holding one crashed run."""
    home = tmp_path_factory.mktemp("api")
    config = home / "farm.toml"
    config.write_text(f'data_dir = "{home / "data"}"\n')
    store = Store(f"sqlite:///{home / 'data' / 'farm.db'}")
    with store.session() as db:
        series = Series(title="mm: thp", total=2, source="t.mbox", content_hash="h")
        app = Application(series=series, tree="/srv/linux", base_commit="b" * 40, branch="b")
        app.commits = [AppliedCommit(index=k, sha=f"{k:02d}" * 20) for k in (1, 2)]
        db.add(app)
        db.flush()
        run = Run(
            kind=RunKind.PATCHED,
            series_id=series.id,
            application_id=app.id,
            upto=2,
            commit="02" * 20,
            host="workstation",
            load="thp",
            soak_seconds=43200,
            state=RunState.DONE,
            verdict=Verdict.FAIL,
            ending=RunEnding(
                findings=[
                    Finding(cause=Cause.CRASH, text=f"crash: {CRASH}", title=CRASH),
                    *(
                        Finding(cause=Cause.COUNTER, text=f"counter {c}: grows", counter=c)
                        for c in ("nr_anon_partially_mapped", "pswpout")
                    ),
                ]
            ),
        )
        db.add(run)
        db.flush()
        db.add(
            Crash(
                run_id=run.id,
                host="workstation",
                title=CRASH,
                kind="BUG",
                signature="s",
                report="...",
            )
        )
    port = free_port()
    argv = [str(FARM), "api", "--port", str(port), "--log-level", "warning"]
    env = farm_env(config, FARM_API_TOKEN=TOKEN)
    with service(argv, home / "api.log", f"http://127.0.0.1:{port}/healthz", env):
        yield Api(f"http://127.0.0.1:{port}", store, run.id)
    store.dispose()


@contextmanager
def alertmanager(home: Path, api: Api, token: str) -> Iterator[str]:
    """deploy/alertmanager.yml pointed at this test's farm api, with fast timings."""
    home.mkdir()
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    config["route"].update(group_wait="0s", group_interval="1s", repeat_interval="1s")
    webhook = config["receivers"][0]["webhook_configs"][0]
    webhook["url"] = webhook["url"].replace("http://127.0.0.1:9479", api.url)
    token_file = home / "token"
    token_file.write_text(token)
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    port = free_port()
    argv = [
        "/usr/bin/prometheus-alertmanager",
        f"--config.file={write_yaml(home / 'alertmanager.yml', config)}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    with service(argv, home / "alertmanager.log", f"{url}/-/ready"):
        yield url


def fire(alertmanager_url: str, labels: dict[str, str]) -> None:
    """What Prometheus does when a rule fires: POST the alert to Alertmanager's API."""
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {"summary": "fired by a test"},
        "startsAt": dt.datetime.now(dt.UTC).isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph",
    }
    httpx.post(f"{alertmanager_url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def rows(store: Store, alertname: str) -> list[Alert]:
    with store.session() as db:
        return list(db.scalars(select(Alert).where(Alert.alertname == alertname)))


def bisections(store: Store) -> list[Bisection]:
    with store.session() as db:
        return list(db.scalars(select(Bisection)))


def webhook_failures(alertmanager_url: str) -> float:
    text = httpx.get(f"{alertmanager_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("alertmanager_notifications_failed_total")
        and 'integration="webhook"' in line
    )


def test_a_firing_alert_delivered_by_alertmanager_queues_exactly_one_bisection(
    api: Api, tmp_path: Path
) -> None:
    labels = {"alertname": "FarmRunCrashed", "run": str(api.run_id), "regression": CRASH}
    with alertmanager(tmp_path / "am", api, TOKEN) as url:
        fire(url, labels)
        # Alertmanager re-sends the group every second here: wait for a real repeat.
        [row] = wait_until(
            lambda: [r for r in rows(api.store, "FarmRunCrashed") if r.notifications >= 3],
            "three deliveries of the alert",
        )

    assert row.source == "alertmanager"
    assert row.action == AlertAction.BISECTION_REQUESTED
    assert row.labels["run"] == str(api.run_id)
    [bisection] = bisections(api.store)
    assert (bisection.id, bisection.run_id) == (row.bisection_id, api.run_id)
    assert (bisection.regression, bisection.requested_by) == (CRASH, f"alert:{row.fingerprint}")


def test_alertmanager_with_a_wrong_token_is_refused_and_nothing_is_recorded(
    api: Api, tmp_path: Path
) -> None:
    labels = {"alertname": "FarmWrongToken", "run": str(api.run_id), "counter": "pgfault"}
    with alertmanager(tmp_path / "am", api, "not-the-token-0123456789") as url:
        fire(url, labels)
        wait_until(lambda: webhook_failures(url) >= 1, "a refused webhook delivery")

    assert rows(api.store, "FarmWrongToken") == []
    assert all(b.regression != "pgfault" for b in bisections(api.store))


def test_the_served_api_refuses_a_missing_token_and_takes_grafanas_format(api: Api) -> None:
    grafana = {
        "receiver": "farm",
        "status": "firing",
        "orgId": 1,
        "version": "1",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "FarmCounterExpectationFailed",
                    "run": str(api.run_id),
                    "host": "workstation",
                    "counter": "nr_anon_partially_mapped",
                },
                "annotations": {},
                "startsAt": "2026-11-26T05:51:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": "c6eadffa33fcdf37",
                "values": {"B": 1},
            }
        ],
    }
    refused = httpx.post(f"{api.url}/api/alerts", json=grafana, timeout=5)
    accepted = httpx.post(
        f"{api.url}/api/alerts",
        json=grafana,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert refused.status_code == 401
    assert accepted.status_code == 200
    [requested] = accepted.json()["bisections_requested"]
    shown = httpx.get(
        f"{api.url}/api/bisections/{requested}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()
    assert (shown["regression"], shown["regression_kind"]) == (
        "nr_anon_partially_mapped",
        "counter",
    )


def test_simultaneous_deliveries_of_one_alert_record_it_once(api: Api) -> None:
    """Two senders (or a retry racing the original) post at the same moment."""
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "FarmRace", "run": str(api.run_id), "counter": "pswpout"},
                "startsAt": "2026-11-26T04:00:00Z",
                "fingerprint": "0badc0ffee000001",
            }
        ],
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.post(
                    f"{api.url}/api/alerts", json=body, headers=headers, timeout=30
                ),
                range(8),
            )
        )

    assert [a.status_code for a in answers] == [200] * 8
    assert sum(len(a.json()["bisections_requested"]) for a in answers) == 1
    [row] = rows(api.store, "FarmRace")
    assert row.notifications == 8
    assert len([b for b in bisections(api.store) if b.regression == "pswpout"]) == 1
