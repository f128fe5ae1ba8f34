# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from soakstack import soak_config, soak_store, ssh_host, stack  # noqa: F401

from farm.scheduler.leases import redis_client
from farm.services import LocalServices


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[redis.Redis[bytes]]:
    """A client of a private redis-server (the broker the reconciler keeps its
    re-drive records in)."""
    with LocalServices(None, tmp_path / "redis-logs") as local:
        client = redis_client(local.broker_url)
        yield client
        client.close()
