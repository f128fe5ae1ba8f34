# SPDX-License-Identifier: Apache-2.0
"""Reading grafana/: every PromQL expression of the dashboards and alert rules, and
Grafana's template-variable substitution, so tests can check and evaluate them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .conftest import GRAFANA

DATASOURCE_UID = "farm-prometheus"
DATASOURCE_VARIABLE = "${datasource}"  # dashboards pick it; it defaults to DATASOURCE_UID
GLOBALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")
METRIC = re.compile(r"\bfarm_[a-z0-9_]+\b")

# The metrics contract (docs/metrics.md of the scheduler stage): exact names, and the
# per-field families of vmstat, meminfo and PSI.
CONTRACT = {
    "farm_host_up",
    "farm_host_last_sample_timestamp_seconds",
    "farm_host_tainted",
    "farm_run_info",
    "farm_runs",
    "farm_run_state_age_seconds",
    "farm_run_crashes",
    "farm_run_counter_failures",
    "farm_crashes_total",
    "farm_build_duration_seconds",
    "farm_builds_total",
    "farm_bisections",
    "farm_bisection_confidence",
    "farm_bisection_leader",
    "farm_run_counter",
    "farm_run_event_timestamp_seconds",
    "farm_buddyinfo_free_blocks",
    "farm_slab_bytes",
    "farm_slab_total_bytes",
}
FAMILIES = re.compile(
    r"^farm_(vmstat_[a-z0-9_]+|meminfo_[a-z0-9_]+_bytes"
    r"|psi_[a-z]+_(some|full)_(microseconds_total|avg10))$"
)


@dataclass(frozen=True)
class Query:
    where: str  # "farm-soak.json: panel 'Free memory'" and the like
    expr: str
    variables: dict[str, dict[str, Any]]  # the dashboard's template variables by name


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((GRAFANA / "provisioning/alerting/farm-rules.yaml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def queries() -> list[Query]:
    """Every PromQL expression Grafana will run: panels, annotations, alert rules."""
    found: list[Query] = []
    for name, board in dashboards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(Query(f"{name}: panel {panel['title']!r}", target["expr"], variables))
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:
                found.append(
                    Query(
                        f"{name}: annotation {annotation['name']!r}", annotation["expr"], variables
                    )
                )
    for rule in alert_rules():
        for data in rule["data"]:
            if data["datasourceUid"] == DATASOURCE_UID:
                found.append(Query(f"alert rule {rule['title']!r}", data["model"]["expr"], {}))
    return found


def used_variables(text: str) -> set[str]:
    return {a or b for a, b in VARIABLE.findall(text)}


def substitute(expr: str, values: dict[str, list[str]]) -> str:
    """Grafana's interpolation: one value as is, several as a regex alternation."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GLOBALS:
            return GLOBALS[name]
        chosen = values[name]
        return chosen[0] if len(chosen) == 1 else "(" + "|".join(map(re.escape, chosen)) + ")"

    return VARIABLE.sub(value, expr)


def metric_names(expr: str) -> set[str]:
    return set(METRIC.findall(expr))


def in_contract(metric: str) -> bool:
    return metric in CONTRACT or bool(FAMILIES.match(metric))
