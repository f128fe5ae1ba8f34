# SPDX-License-Identifier: Apache-2.0
"""Real services for the deployment tests: farm api (uvicorn), Alertmanager, Prometheus.

Each runs on a free loopback port with its state in a temporary directory and is
stopped (by its own pid) when the test module is done.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
GRAFANA = REPO / "grafana"
FARM = Path(sys.executable).parent / "farm"
TOKEN = "deploy-test-token-0123456789"


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (httpx.HTTPError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def service(
    argv: list[str], log: Path, ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run argv until the block ends; ready once ``ready_url`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"{argv[0]} exited with {process.returncode}:\n{log.read_text()}")
            return httpx.get(ready_url, timeout=1).status_code == 200

        wait_until(ready, f"{Path(argv[0]).name} answering {ready_url}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def farm_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    return {**env, "FARM_CONFIG": str(config), **extra}
