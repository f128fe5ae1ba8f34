# SPDX-License-Identifier: Apache-2.0
"""grafana/: provisioning and dashboards checked as Grafana will read them.

Grafana itself is not packaged for Debian; the files are checked structurally here,
their PromQL is parsed by promtool, and test_promql.py runs every query against a
real Prometheus scraping a real exporter.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, GRAFANA
from .grafana import (
    DATASOURCE_UID,
    DATASOURCE_VARIABLE,
    GLOBALS,
    alert_rules,
    dashboards,
    in_contract,
    metric_names,
    queries,
    substitute,
    used_variables,
)


def provisioning(kind: str) -> dict[str, Any]:
    [path] = (GRAFANA / "provisioning" / kind).glob("*.yaml")
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def datasource_uids(node: Any) -> list[str]:
    """Every datasource uid referenced anywhere in a dashboard."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"]["uid"])
        for value in node.values():
            found.extend(datasource_uids(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(datasource_uids(value))
    return found


def test_the_datasource_has_the_fixed_uid_and_points_at_local_prometheus() -> None:
    [source] = provisioning("datasources")["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, "prometheus")
    assert source["url"] == "http://127.0.0.1:9090"


def test_the_dashboard_provider_loads_files_from_the_configured_directory() -> None:
    [provider] = provisioning("dashboards")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "$GRAFANA_FARM_DASHBOARDS"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    target = grafana["environment"]["GRAFANA_FARM_DASHBOARDS"]
    assert f"../grafana/dashboards:{target}:ro" in grafana["volumes"]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboards_are_raw_json_using_the_datasource_variable_that_defaults_to_farms(
    name: str,
) -> None:
    board = dashboards()[name]
    assert "__inputs" not in board, "an 'export for sharing' file: export it raw"
    assert board["uid"] == Path(name).stem
    uids = set(datasource_uids(board)) - {"-- Grafana --"}
    assert uids == {DATASOURCE_VARIABLE}
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    assert variable["current"]["value"] == DATASOURCE_UID
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_the_three_dashboards_exist() -> None:
    titles = {board["title"] for board in dashboards().values()}
    assert titles == {"farm overview", "farm soak", "farm bisection"}


def test_the_soak_view_has_host_run_counter_variables_and_crash_annotations() -> None:
    board = dashboards()["farm-soak.json"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "farm_url", "host", "run", "counter", "watched"]
    [crashes] = [a for a in board["annotations"]["list"] if a["name"] == "crashes"]
    assert (
        "farm_run_event_timestamp_seconds{" in crashes["expr"]
        and 'event=~"crash"' in crashes["expr"]
    )
    assert crashes["useValueForTime"] is True  # the event's own time, not the scrape's
    assert "{{title}}" in crashes["titleFormat"] and 'href="{{url}}"' in crashes["textFormat"]


def test_the_soak_view_overlays_a_run_on_its_baseline_with_the_difference() -> None:
    panels = {p["title"]: p for p in dashboards()["farm-soak.json"]["panels"]}
    overlay = panels["$watched: run against its baseline"]["targets"][0]["expr"]
    difference = panels["$watched: run minus baseline"]["targets"][0]["expr"]
    assert overlay == 'farm_run_counter{run=~"$run", counter="$watched"}'
    assert 'role="patched"} - ignoring (role) farm_run_counter{' in difference


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_says_what_it_shows_and_the_dashboards_link_each_other(name: str) -> None:
    board = dashboards()[name]
    undescribed = [p["title"] for p in board["panels"] if not p.get("description")]
    assert undescribed == []
    assert {link["type"] for link in board["links"]} == {"dashboards", "link"}
    assert "farm" in board["tags"]


def test_the_bisection_view_shows_the_leading_patch_and_its_probability() -> None:
    panels = {p["title"]: p for p in dashboards()["farm-bisection.json"]["panels"]}
    leader = panels["Leading patch and its probability"]
    assert leader["targets"][0]["expr"].startswith("farm_bisection_leader{")
    assert "{{subject}}" in leader["targets"][0]["legendFormat"]
    assert leader["fieldConfig"]["defaults"]["unit"] == "percentunit"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_template_variables_resolve(name: str) -> None:
    """Used variables are defined, and each variable's query uses only earlier ones."""
    board = dashboards()[name]
    defined: list[str] = []
    for variable in board["templating"]["list"]:
        defined.append(variable["name"])
        if variable["type"] in ("datasource", "textbox"):
            continue
        assert variable["datasource"]["uid"] == DATASOURCE_VARIABLE
        defined.pop()
        assert used_variables(variable["query"]["query"]) <= set(defined), variable["name"]
        defined.append(variable["name"])
    texts = [p["title"] for p in board["panels"]] + [
        q.expr for q in queries() if q.where.startswith(name)
    ]
    for text in texts:
        assert used_variables(text) <= set(defined) | GLOBALS.keys(), text


def test_every_metric_named_is_in_the_metrics_contract() -> None:
    for query in queries():
        values = {name: ["farm_vmstat_pgfault_total"] for name in query.variables}
        for metric in metric_names(substitute(query.expr, values)):
            assert in_contract(metric), f"{query.where}: {metric} is not an exported metric"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression (variables substituted) as a recording rule."""
    exprs = []
    for query in queries():
        values = {
            name: ["farm_vmstat_pgfault_total"] if name == "counter" else ["a", "b"]
            for name in query.variables
        }
        exprs.append(substitute(query.expr, values))
    rules = {
        "groups": [
            {
                "name": "check",
                "rules": [{"record": f"farm:check{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_alert_rules_query_the_fixed_datasource_and_keep_dollars_out_of_labels() -> None:
    for rule in alert_rules():
        refs = {d["refId"] for d in rule["data"]}
        assert rule["condition"] in refs
        assert {d["datasourceUid"] for d in rule["data"]} == {DATASOURCE_UID, "__expr__"}
        # Grafana interpolates environment variables into labels on provisioning.
        assert not any("$" in v for v in rule["labels"].values()), rule["title"]
        assert rule["noDataState"] == "OK"


def test_the_contact_point_posts_to_farm_with_the_token_from_the_environment() -> None:
    notify = yaml.safe_load((GRAFANA / "provisioning/alerting/farm-notify.yaml").read_text())
    [point] = notify["contactPoints"]
    [receiver] = point["receivers"]
    alertmanager = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    assert receiver["type"] == "webhook"
    assert receiver["settings"]["url"] == alertmanager["receivers"][0]["webhook_configs"][0]["url"]
    assert receiver["settings"]["authorization_scheme"] == "Bearer"
    assert receiver["settings"]["authorization_credentials"] == "$FARM_API_TOKEN"
    [policy] = notify["policies"]
    assert policy["receiver"] == point["name"]
    assert {"run", "host"} <= set(policy["group_by"])


def test_no_secret_is_written_in_grafana_or_deploy_files() -> None:
    token_like = re.compile(
        r"(password|token|credentials)\s*[:=]\s*['\"]?[A-Za-z0-9_\-]{12,}", re.I
    )
    for path in [*GRAFANA.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]:
        assert not token_like.search(path.read_text()), path
