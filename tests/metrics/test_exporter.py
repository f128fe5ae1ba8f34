# SPDX-License-Identifier: Apache-2.0
"""/metrics: the metrics contract, read from a real store holding real /proc readings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from farm.config import FarmConfig, TreeConfig
from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.metrics.exporter import Exposition, meminfo_name
from farm.soak.sampler import parse_sample, sample_command
from farm.store import Store
from farm.store.base import utcnow
from farm.store.builds import Build, BuildState
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import KeyCache, add_samples, ensure_progress


def local_reading(ts: float):  # type: ignore[no-untyped-def]
    """This machine's /proc read by the very command the sampler sends over SSH."""
    out = subprocess.run(
        ["sh", "-c", sample_command(None)], capture_output=True, text=True, check=True
    ).stdout
    return parse_sample(out, ts)[0]


@pytest.fixture
def filled(config: FarmConfig, store: Store) -> Store:
    now = time.time()
    with store.session() as session:
        add_samples(
            session,
            KeyCache(),
            [
                ("laptop", None, local_reading(now - 20)),
                ("laptop", None, local_reading(now)),
                ("workstation", None, local_reading(now - 600)),
            ],
        )
        soaking = Run(
            kind=RunKind.PATCHED,
            host="laptop",
            commit="c0ffee" * 6,
            load="thp-split",
            soak_seconds=60,
            upto=7,
            state=RunState.SOAKING,
            kernel_release="6.1.0-farm",
        )
        failed = Run(
            kind=RunKind.BASELINE,
            host="workstation",
            commit="base",
            load="thp-split",
            soak_seconds=60,
            state=RunState.DONE,
            verdict=Verdict.FAIL,
            ended_at=utcnow(),
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
        session.add_all([soaking, failed])
        session.flush()
        ensure_progress(session, soaking.id)  # as queue_run does
        session.add(
            Crash(
                run_id=failed.id,
                host="workstation",
                title="kernel BUG in deferred_split_scan",
                kind="BUG",
                signature="s1",
                report="...",
            )
        )
    return store


def families(config: FarmConfig, store: Store) -> dict[str, object]:
    body = Exposition(config, store).render().decode()
    return {f.name: f for f in text_string_to_metric_families(body)}


def samples_of(fams: dict[str, object], name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in fams[name].samples]  # type: ignore[attr-defined]


def test_vmstat_and_meminfo_follow_the_naming_contract(config: FarmConfig, filled: Store) -> None:
    fams = families(config, filled)
    vmstat = Path("/proc/vmstat").read_text()

    assert fams["farm_vmstat_pgfault"].type == "counter"  # type: ignore[attr-defined]
    assert fams["farm_vmstat_nr_free_pages"].type == "gauge"  # type: ignore[attr-defined]
    assert {labels["host"] for labels, _ in samples_of(fams, "farm_vmstat_pgfault")} == {
        "laptop",
        "workstation",
    }
    assert "thp_split_pmd" not in vmstat or "farm_vmstat_thp_split_pmd" in fams
    [(_, memtotal)] = [
        s for s in samples_of(fams, "farm_meminfo_memtotal_bytes") if s[0]["host"] == "laptop"
    ]
    assert memtotal == int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    assert meminfo_name("AnonHugePages") == "farm_meminfo_anonhugepages_bytes"
    assert meminfo_name("HugePages_Total") == "farm_meminfo_hugepages_total"  # a count


def test_hosts_runs_and_crashes_carry_host_never_instance(
    config: FarmConfig, filled: Store
) -> None:
    fams = families(config, filled)

    up = dict((labels["host"], value) for labels, value in samples_of(fams, "farm_host_up"))
    assert up == {"laptop": 1.0, "workstation": 0.0}  # its newest sample is 10 min old
    info = {labels["run"]: labels for labels, _ in samples_of(fams, "farm_run_info")}
    assert {(i["host"], i["kind"], i["patch"], i["load"]) for i in info.values()} == {
        ("laptop", "patched", "7", "thp-split"),
        ("workstation", "baseline", "0", "thp-split"),
    }
    runs = dict((labels["state"], value) for labels, value in samples_of(fams, "farm_runs"))
    assert (runs["soaking"], runs["done"], runs["queued"]) == (1.0, 1.0, 0.0)
    [(labels, value)] = samples_of(fams, "farm_run_counter_failures")
    assert (labels["counter"], labels["host"], value) == (
        "nr_anon_partially_mapped",
        "workstation",
        1.0,
    )
    assert samples_of(fams, "farm_crashes") == [({"host": "workstation", "kind": "BUG"}, 1.0)]
    ages = samples_of(fams, "farm_run_state_age_seconds")
    assert [labels["state"] for labels, _ in ages] == ["soaking"]
    for fam in fams.values():
        for sample in fam.samples:  # type: ignore[attr-defined]
            assert "instance" not in sample.labels


def test_farm_exporter_serves_metrics_on_loopback(farm_toml: Path, filled: Store) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FARM_CONFIG": str(farm_toml)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm", "exporter", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        assert response.status_code == 200
        assert 'farm_host_up{host="laptop"} 1.0' in response.text
        assert 'farm_vmstat_pgfault_total{host="laptop"}' in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_what_an_mm_developer_looks_at_is_exported_per_host(
    config: FarmConfig, filled: Store
) -> None:
    with filled.session() as session:
        session.add(
            Build(commit="c0ffee" * 6, config_hash="5eed", state=BuildState.OK, artifacts_dir="x")
        )
    fams = families(config, filled)

    assert fams["farm_psi_memory_some_microseconds"].type == "counter"  # type: ignore[attr-defined]
    assert fams["farm_psi_memory_some_avg10"].type == "gauge"  # type: ignore[attr-defined]
    laptop = [labels for labels, _ in samples_of(fams, "farm_buddyinfo_free_blocks")
              if labels["host"] == "laptop"]  # fmt: skip
    assert {"zone", "order"} <= laptop[0].keys() and {"0", "10"} <= {lab["order"] for lab in laptop}
    caches = [
        lab["cache"] for lab, _ in samples_of(fams, "farm_slab_bytes") if lab["host"] == "laptop"
    ]
    assert len(caches) == 10
    [(_, slab_total)] = [
        s for s in samples_of(fams, "farm_slab_total_bytes") if s[0]["host"] == "laptop"
    ]
    assert slab_total > 0
    [(kernel, _)] = samples_of(fams, "farm_kernel_info")
    assert kernel == {
        "host": "laptop", "release": "6.1.0-farm", "commit": "c0ffee" * 6, "patch": "7",
        "config_hash": "5eed",
    }  # fmt: skip
    boots = dict(
        (lab["host"], value) for lab, value in samples_of(fams, "farm_host_boot_time_seconds")
    )
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert boots["laptop"] <= time.time() - uptime + 1  # sampled before this read of uptime
    assert boots["laptop"] > time.time() - uptime - 120


def test_vmstat_items_are_typed_by_the_trees_own_vmstat_c(
    config: FarmConfig, filled: Store, tmp_path: Path
) -> None:
    tree = tmp_path / "linux"
    (tree / "mm").mkdir(parents=True)
    excerpt = Path(__file__).parents[1] / "detect" / "vmstat_text-6.1.c"
    (tree / "mm" / "vmstat.c").write_text(excerpt.read_text())
    for argv in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                 "commit", "-qm", "6.1"]):  # fmt: skip
        subprocess.run(["git", "-C", str(tree), *argv], check=True)
    with_tree = config.model_copy(update={"trees": [TreeConfig(name="linux", path=tree)]})

    fams = families(with_tree, filled)

    # By name alone workingset_nodes would look like an event; vmstat.c says it is a gauge.
    assert fams["farm_vmstat_workingset_nodes"].type == "gauge"  # type: ignore[attr-defined]
    assert fams["farm_vmstat_nr_dirtied"].type == "counter"  # type: ignore[attr-defined]
    assert fams["farm_vmstat_nr_free_pages"].type == "gauge"  # type: ignore[attr-defined]


def test_the_loads_memcg_is_exported_as_sizes_in_bytes_and_events_as_counters(
    config: FarmConfig, store: Store
) -> None:
    reading = local_reading(time.time())
    memcg = {"memcg:anon": 4096, "memcg:pgfault": 12, "memcg:workingset_nodes": 3}
    with store.session() as session:
        add_samples(
            session, KeyCache(), [("laptop", None, replace(reading, mm={**reading.mm, **memcg}))]
        )
    fams = families(config, store)

    assert fams["farm_memcg_anon_bytes"].type == "gauge"  # type: ignore[attr-defined]
    assert samples_of(fams, "farm_memcg_anon_bytes") == [({"host": "laptop"}, 4096.0)]
    assert fams["farm_memcg_pgfault"].type == "counter"  # type: ignore[attr-defined]
    assert fams["farm_memcg_workingset_nodes"].type == "gauge"  # type: ignore[attr-defined]
