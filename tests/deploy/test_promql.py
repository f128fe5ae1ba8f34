# SPDX-License-Identifier: Apache-2.0
"""Every PromQL expression of the dashboards and alert rules, run by a real Prometheus
scraping a real `farm exporter`, returns data for the scenario it is meant for.

The scenario in the store: the laptop soaks a patched kernel whose counter failed its
expectation, after its baseline (which rebooted once) passed there; the workstation
crashed on a patched run and was power-cycled, and is now down while a bisection run
has been booting there for two hours; a bisection is running.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import httpx
import pytest
import yaml
from netutil import free_port

from farm.cli import COMMANDS
from farm.ending import Cause, Finding, PowerCycle, RunEnding, Verdict
from farm.store import Store
from farm.store.base import utcnow
from farm.store.bisect import Bisection, BisectState
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.series import Series

from .conftest import DEPLOY, FARM, farm_env, service, wait_until, write_yaml
from .grafana import GLOBALS, queries, substitute, used_variables

if "exporter" not in COMMANDS or find_spec(COMMANDS["exporter"].partition(":")[0]) is None:
    pytest.skip(
        "`farm exporter` (farm/metrics, the scheduler stage) is not in this tree yet",
        allow_module_level=True,
    )

from farm.store.samples import (  # after the skip: the scheduler stage's table
    HostState,
    KeyCache,
    Reading,
    RunProgress,
    add_samples,
)

pytestmark = pytest.mark.slow
CRASH = "BUG: corrupted list in deferred_split_scan"


@dataclass(frozen=True)
class Farm:
    store: Store
    prometheus: str
    soaking: int  # laptop, counter failed
    crashed: int  # workstation, ended FAIL
    booting: int  # workstation, bisection run stuck booting, host down


def reading(step: int) -> Reading:
    return Reading(
        ts=time.time(),
        phase="soak",
        boot_id="b1",
        uptime=3600.0 + step,
        tainted=0,
        vmstat={
            "pgfault": 1_000_000 + 5000 * step,
            "thp_split_page": 3 * step,
            "nr_anon_transparent_hugepages": 40 + step,
            "nr_anon_partially_mapped": 7800 * step,
        },
        meminfo={"MemFree": 1_000_000 - step, "AnonHugePages": 81920},
        mm={  # what the sampler adds: PSI, buddyinfo, the largest slab caches
            "psi:memory_some_total_us": 20_000 * step,
            "psi:memory_full_total_us": 5_000 * step,
            "psi:memory_some_avg10": 125,
            "buddy:Normal_0": 900 - step,
            "buddy:Normal_9": 12,
            "slab:kmalloc-64": 65_536 + 64 * step,
            "slab:total": 4_000_000 + 64 * step,
        },
    )


def add_sample(store: Store, keys: KeyCache, host: str, run_id: int, step: int) -> None:
    """What the sampler does every interval: the reading lands, the host is up."""
    with store.session() as db:
        add_samples(db, keys, [(host, run_id, reading(step))])


def make_scenario(store: Store) -> tuple[int, int, int]:
    now = time.time()
    with store.session() as db:
        series = Series(
            title="mm: split underused THPs", total=7, source="t.mbox", content_hash="h"
        )
        db.add(series)
        db.flush()
        common: dict[str, Any] = {
            "series_id": series.id,
            "commit": "c0ffee",
            "load": "thp",
            "soak_seconds": 43200,
        }
        baseline = Run(
            kind=RunKind.BASELINE,
            host="laptop",
            upto=0,
            state=RunState.DONE,
            verdict=Verdict.PASS,
            kernel_release="6.1.0-farm",
            started_at=utcnow(),
            ended_at=utcnow(),
            **common,
        )
        soaking = Run(
            kind=RunKind.PATCHED,
            host="laptop",
            upto=7,
            state=RunState.SOAKING,
            started_at=utcnow(),
            kernel_release="6.1.0-farm-7",
            **common,
            ending=RunEnding(
                findings=[
                    Finding(
                        cause=Cause.COUNTER,
                        text="counter nr_anon_partially_mapped: 78299 after quiesce",
                        counter="nr_anon_partially_mapped",
                        rule="returns-to-zero",
                        value=78299,
                    )
                ]
            ),
        )
        crashed = Run(
            kind=RunKind.PATCHED,
            host="workstation",
            upto=7,
            state=RunState.DONE,
            verdict=Verdict.FAIL,
            ending=RunEnding(
                findings=[Finding(cause=Cause.CRASH, text=f"crash: {CRASH}", title=CRASH)],
                power_cycle=PowerCycle(done=True, text="power-cycled workstation: no answer"),
            ),
            kernel_release="6.1.0-farm-7",
            ended_at=utcnow(),
            **common,
        )
        db.add_all([baseline, soaking, crashed])
        db.flush()
        bisection = Bisection(
            run_id=crashed.id,
            series_id=series.id,
            regression=CRASH,
            state=BisectState.RUNNING,
            posterior=[0.05, 0.1, 0.7, 0.15],
        )
        db.add(bisection)
        db.flush()
        booting = Run(
            kind=RunKind.BISECT,
            host="workstation",
            upto=3,
            state=RunState.BOOTING,
            bisection_id=bisection.id,
            kernel_release="6.1.0-farm-3",
            **common,
        )
        db.add(booting)
        db.flush()
        db.add(
            Crash(
                run_id=crashed.id,
                host="workstation",
                title=CRASH,
                kind="BUG",
                signature="s1",
                report="...",
            )
        )
        db.add_all(
            [
                RunProgress(run_id=soaking.id, due_at=now, state_since=now - 600),
                RunProgress(run_id=booting.id, due_at=now, state_since=now - 7200),
                HostState(host="workstation", run_id=booting.id, up=False, last_ok=now - 7200),
            ]
        )
        return baseline.id, soaking.id, crashed.id, booting.id


def add_baseline_samples(store: Store, keys: KeyCache, run_id: int) -> None:
    """An hour ago, the baseline soaked; its host rebooted once during it."""
    start = time.time() - 3600
    batch = []
    for step in range(6):
        sample = reading(step)
        boot = "b0" if step < 3 else "b0-again"
        batch.append(("laptop", run_id, dataclasses.replace(sample, ts=start + step, boot_id=boot)))
    with store.session() as db:
        add_samples(db, keys, batch)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    home = tmp_path_factory.mktemp("promql")
    config = home / "farm.toml"
    config.write_text(f'data_dir = "{home / "data"}"\n')
    store = Store(f"sqlite:///{home / 'data' / 'farm.db'}")
    baseline, soaking, crashed, booting = make_scenario(store)
    keys = KeyCache()
    add_baseline_samples(store, keys, baseline)
    add_sample(store, keys, "laptop", soaking, 0)

    exporter_port, prometheus_port = free_port(), free_port()
    prometheus_yml = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    prometheus_yml["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prometheus_yml["rule_files"] = [str(DEPLOY / "rules" / "farm.rules.yml")]
    del prometheus_yml["alerting"]
    [job] = [j for j in prometheus_yml["scrape_configs"] if j["job_name"] == "farm"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    url = f"http://127.0.0.1:{prometheus_port}"
    exporter = [str(FARM), "exporter", "--port", str(exporter_port)]
    prometheus = [
        "/usr/bin/prometheus",
        f"--config.file={write_yaml(home / 'prometheus.yml', prometheus_yml)}",
        f"--storage.tsdb.path={home / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    with (
        service(
            exporter,
            home / "exporter.log",
            f"http://127.0.0.1:{exporter_port}/metrics",
            farm_env(config),
        ),
        service(prometheus, home / "prometheus.log", f"{url}/-/ready"),
    ):
        wait_until(lambda: instant(url, "farm_host_up"), "a first scrape of the exporter")
        # A soak in progress: fresh samples every scrape, then a second crash.
        for step in range(1, 4):
            add_sample(store, keys, "laptop", soaking, step)
            time.sleep(1.0)
        with store.session() as db:
            db.add(
                Crash(
                    run_id=booting,
                    host="workstation",
                    title=CRASH,
                    kind="BUG",
                    signature="s1",
                    report="...",
                )
            )
        wait_until(
            lambda: instant(url, 'farm_crashes_total{host="workstation"} >= 2'),
            "the second crash scraped",
        )
        time.sleep(2.0)
        yield Farm(store, url, soaking, crashed, booting)
    store.dispose()


def instant(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def resolve(url: str, variable: dict[str, Any], values: dict[str, list[str]]) -> list[str]:
    """What Grafana's Prometheus datasource would list for a query variable."""
    query = substitute(variable["query"]["query"], values)
    if query.startswith("metrics("):
        names = httpx.get(f"{url}/api/v1/label/__name__/values", timeout=10).json()["data"]
        pattern = re.compile(query[len("metrics(") : -1])
        return [n for n in names if pattern.search(n)]
    metric, _, label = query[len("label_values(") : -1].rpartition(",")
    series = httpx.get(
        f"{url}/api/v1/series", params={"match[]": metric.strip()}, timeout=10
    ).json()["data"]
    return sorted({s[label.strip()] for s in series if label.strip() in s})


def test_template_variables_list_the_scenarios_hosts_runs_and_counters(farm: Farm) -> None:
    board_vars = {q.where.split(":")[0]: q.variables for q in queries() if q.variables}
    soak = board_vars["farm-soak.json"]
    values: dict[str, list[str]] = {}
    for name in ("host", "run", "counter"):
        values[name] = resolve(farm.prometheus, soak[name], values)
    assert values["host"] == ["laptop", "workstation"]
    assert {str(farm.soaking), str(farm.booting)} <= set(values["run"])
    assert "farm_vmstat_pgfault_total" in values["counter"]
    assert "farm_meminfo_memfree_bytes" in values["counter"]


def test_every_dashboard_and_alert_query_returns_data(farm: Farm) -> None:
    empty = []
    for query in queries():
        values: dict[str, list[str]] = {}
        used = used_variables(query.expr) - GLOBALS.keys()
        for name, variable in query.variables.items():  # in order: later ones use earlier
            if variable["type"] == "query" and used:
                values[name] = resolve(farm.prometheus, variable, values)
        for name in values:
            if not query.variables[name].get("multi"):
                values[name] = values[name][:1]  # a single-value variable: one is chosen
        if "counter" in values:
            values["counter"] = ["farm_vmstat_pgfault_total"]
        expr = substitute(query.expr, values)
        if not instant(farm.prometheus, expr):
            empty.append(f"{query.where}: {expr}")
    assert empty == []


def test_every_alert_rule_fires_for_its_scenario(farm: Farm) -> None:
    """Pending or firing: the rules with `for:` would fire after it in a real soak."""
    [group] = httpx.get(f"{farm.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert all(rule["health"] == "ok" for rule in group["rules"])
    alerts = {rule["name"]: [a["labels"] for a in rule["alerts"]] for rule in group["rules"]}

    assert {(a["run"], a["host"]) for a in alerts["FarmRunCrashed"]} == {
        (str(farm.crashed), "workstation"),
        (str(farm.booting), "workstation"),
    }
    assert [(a["run"], a["counter"]) for a in alerts["FarmCounterExpectationFailed"]] == [
        (str(farm.soaking), "nr_anon_partially_mapped")
    ]
    assert [a["run"] for a in alerts["FarmHostDownDuringRun"]] == [str(farm.booting)]
    assert [(a["run"], a["state"]) for a in alerts["FarmRunStuck"]] == [
        (str(farm.booting), "booting")
    ]


def test_annotations_carry_the_events_titles_and_the_web_views_run_page(farm: Farm) -> None:
    events = {
        (e["metric"]["event"], e["metric"]["run"]): e["metric"]
        for e in instant(farm.prometheus, "farm_run_event_timestamp_seconds")
    }
    crash = events[("crash", str(farm.crashed))]
    assert crash["title"] == CRASH
    assert crash["url"] == f"http://127.0.0.1:9479/runs/{farm.crashed}"
    assert events[("power_cycle", str(farm.crashed))]["title"].startswith("power-cycled")
    assert events[("end", str(farm.crashed))]["title"].startswith(f"run {farm.crashed} FAIL")
    assert ("start", str(farm.soaking)) in events
    assert [k for k in events if k[0] == "reboot"] != []


def test_the_overlay_pairs_a_soaking_run_with_its_baseline_and_the_leader_is_named(
    farm: Farm,
) -> None:
    overlay = instant(farm.prometheus, f'farm_run_counter{{run="{farm.soaking}"}}')
    roles = {(o["metric"]["counter"], o["metric"]["role"]) for o in overlay}
    assert {("meminfo:MemFree", "patched"), ("meminfo:MemFree", "baseline")} <= roles
    assert ("nr_anon_partially_mapped", "baseline") in roles  # the failed counter
    [leader] = instant(farm.prometheus, "farm_bisection_leader")
    assert (leader["metric"]["patch"], leader["value"][1]) == ("03", "0.7")
