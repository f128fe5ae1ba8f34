# SPDX-License-Identifier: Apache-2.0
"""What `farm submit` tells before and after: the whole plan of a dry run (kernels,
runs, host-hours) and, when no farm would run the queued soaks, that `farm up` is
missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import MBOXES, Outcome

Farm = Callable[..., Outcome]


def test_a_dry_run_says_a_12h_soak_with_its_baseline_costs_24_hours_of_each_host(
    farm: Farm,
) -> None:
    result = farm("submit", "--dry-run", "--soak", "12h", str(MBOXES / "series-v2.mbox"))
    assert result.code == 0, result.err
    plan = result.out.split("\nplan: ")[1].splitlines()
    assert plan == [
        "build 2 kernels: the base (6a3b1d5a2f05) and +5 (patches 1, 2, 3, 4, 5)",
        "  on each of laptop, workstation: a baseline soak of the base (skipped if one "
        "younger than 168 h exists) and a soak of +5, 12h each, load kbuild-tmpfs-swap",
        "  cost: 24 host-hours per host (a 12h soak with its baseline), 48 host-hours in all",
    ]


def test_the_dry_run_plan_in_json(farm: Farm) -> None:
    argv = ["--dry-run", "--json", "--upto", "2", "--hosts", "laptop", "--soak", "90m"]
    result = farm("submit", *argv, str(MBOXES / "series-v2.mbox"))
    assert result.code == 0, result.err
    assert json.loads(result.out)["plan"] == {
        "kernels": [
            {"kernel": "base", "commit": "6a3b1d5a2f0504c23e7652c3bc56653aef14b12d"},
            {"kernel": "+2", "patches": [1, 2]},
        ],
        "hosts": ["laptop"],
        "load": "kbuild-tmpfs-swap",
        "runs_per_host": [
            {"kind": "baseline", "kernel": "base", "soak_seconds": 5400.0},
            {"kind": "patched", "kernel": "+2", "soak_seconds": 5400.0},
        ],
        "baseline_reuse_hours": 168.0,
        "host_hours_per_host": 3.0,
        "host_hours": 3.0,
    }


def test_submitting_with_no_farm_running_queues_the_runs_and_names_farm_up(
    farm: Farm, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARM_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    result = farm("submit", "--json", "--tree", str(tree), str(MBOXES / "series-v2.mbox"))
    assert result.code == 0, result.err
    assert json.loads(result.out)["runs"] == [1, 2, 3, 4]
    warning, hint = result.err.splitlines()[-2:]
    assert warning.startswith(
        "farm: warning: no farm is running for this configuration: the broker "
        "redis://127.0.0.1:1/0 does not answer ("
    )
    assert warning.endswith("); the runs wait in the database until one runs")
    assert hint == "  hint: farm up"
