# SPDX-License-Identifier: Apache-2.0
"""Notifications from the run lifecycle itself, driven step by step against the real
sshd host: a submitted run's verdict is announced when its last step commits, a failed
health check makes the host BAD and says so; both reach a real webhook receiver."""

from __future__ import annotations

import pytest
from notify.receivers import webhook_receiver

from farm.config import FarmConfig, NotifyConfig
from farm.scheduler.api import queue_run
from farm.store import Store
from farm.store.runs import RunKind

from .test_lifecycle import drive

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no race: CI time
def test_a_submitted_runs_verdict_and_a_bad_host_are_announced_by_the_lifecycle(
    soak_config: FarmConfig, soak_store: Store
) -> None:
    with webhook_receiver() as hook:
        notify = NotifyConfig(run_end=["webhook"], host_bad=["webhook"], webhook_url=hook.url)
        config = soak_config.model_copy(update={"notify": notify})
        runs = {}
        for kind, load in ((RunKind.PATCHED, "idle-loop"), (RunKind.HEALTH, "exits-early")):
            runs[kind] = queue_run(
                config, soak_store, kind=kind, host="laptop", commit="running", load=load,
                soak_seconds=4, details={"kernel": "running"}, send=False,
            )  # fmt: skip
            drive(config, soak_store, runs[kind])
    [(_, passed), (_, bad)] = hook.requests  # the health run's own ending is farm's business
    assert passed["event"] == "run_end"
    assert passed["title"] == f"run {runs[RunKind.PATCHED]} on laptop (base): PASS"
    assert passed["fields"]["verdict"] == "PASS" and not passed["urgent"]
    assert bad["event"] == "host_bad" and bad["fields"]["run"] == runs[RunKind.HEALTH]
    assert "load exits-early exited with status 7" in bad["fields"]["reason"]
