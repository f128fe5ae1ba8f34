# SPDX-License-Identifier: Apache-2.0
"""deploy/'s Prometheus and Alertmanager files, checked by the tools that will load them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from .conftest import DEPLOY, GRAFANA

RULES = DEPLOY / "rules" / "farm.rules.yml"


def tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = tool("promtool", "check", "config", str(DEPLOY / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_prometheus_scrapes_the_exporter_keeping_its_host_label() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [farm] = [job for job in config["scrape_configs"] if job["job_name"] == "farm"]
    assert farm["honor_labels"] is True
    assert farm["static_configs"] == [{"targets": ["127.0.0.1:9478"]}]
    assert config["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:9093"]}
    ]


def test_alerting_rules_pass_the_linter() -> None:
    result = tool("promtool", "check", "rules", "--lint-fatal", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_alerting_rules_unit_tests_pass() -> None:
    result = tool("promtool", "test", "rules", str(DEPLOY / "rules" / "farm.rules.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alerting_rule_has_a_unit_test_and_names_run_and_host() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    tests = yaml.safe_load((DEPLOY / "rules" / "farm.rules.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert {rule["alert"] for rule in rules} == tested
    for test in tests:
        for case in test["alert_rule_test"]:
            for alert in case["exp_alerts"]:
                assert {"run", "host"} <= alert["exp_labels"].keys(), case["alertname"]


def test_alertmanager_config_is_valid_and_sends_everything_to_farm_with_a_token_file() -> None:
    result = tool("amtool", "check-config", str(DEPLOY / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    [receiver] = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"] == "http://127.0.0.1:9479/api/alerts"
    auth = webhook["http_config"]["authorization"]
    assert auth == {"type": "Bearer", "credentials_file": "/etc/prometheus/farm-api-token"}


def test_grafana_rules_mirror_the_prometheus_rules() -> None:
    prometheus = {
        rule["alert"]: rule for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    }
    provisioned = yaml.safe_load((GRAFANA / "provisioning/alerting/farm-rules.yaml").read_text())
    grafana = {rule["title"]: rule for rule in provisioned["groups"][0]["rules"]}

    assert grafana.keys() == prometheus.keys()
    for name, rule in grafana.items():
        query = next(d for d in rule["data"] if d["refId"] == "A")
        assert query["model"]["expr"].strip() == prometheus[name]["expr"].strip(), name
        assert rule["for"] == prometheus[name].get("for", "0s"), name
        assert rule["labels"] == prometheus[name]["labels"], name


def test_a_rules_file_written_elsewhere_is_refused_by_the_linter(tmp_path: Path) -> None:
    """The lint gate is real: a duplicated rule fails --lint-fatal."""
    rules = yaml.safe_load(RULES.read_text())
    rules["groups"][0]["rules"].append(rules["groups"][0]["rules"][0])
    bad = tmp_path / "dup.rules.yml"
    bad.write_text(yaml.safe_dump(rules))
    assert tool("promtool", "check", "rules", "--lint-fatal", str(bad)).returncode != 0
