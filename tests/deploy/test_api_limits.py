# SPDX-License-Identifier: Apache-2.0
"""A served `farm api` (uvicorn) answers a body it will not take at once, and the
connection is closed so the sender stops: the body is neither read nor held."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netutil import free_port

from farm.store import Store

from .conftest import FARM, TOKEN, farm_env, service

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
LIMIT = 64 * 1024  # [api] max_body_bytes of this test's farm.toml
BLOCK = 64 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Served:
    port: int
    pid: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("api-limits")
    config = home / "farm.toml"
    config.write_text(f'data_dir = "{home / "data"}"\n\n[api]\nmax_body_bytes = {LIMIT}\n')
    Store(f"sqlite:///{home / 'data' / 'farm.db'}").dispose()
    port = free_port()
    argv = [str(FARM), "api", "--port", str(port), "--log-level", "warning"]
    env = farm_env(config, FARM_API_TOKEN=TOKEN)
    with service(argv, home / "api.log", f"http://127.0.0.1:{port}/healthz", env) as process:
        yield Served(port, process.pid)


def peak_memory_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    [kib] = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(kib) / 1024


@dataclass(frozen=True)
class Upload:
    status: int
    seconds: float  # from the request's first byte to the answer's status line
    sent: int  # body bytes the server let in before it closed the connection


def upload(port: int, headers: dict[str, str], size: int, *, chunked: bool = False) -> Upload:
    """POST ``size`` bytes of body the way a stubborn client does: one thread keeps
    sending until done or refused, while this one reads the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    start = time.monotonic()
    sock.sendall(
        f"POST /api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n{extra}\r\n".encode()
    )
    sent = 0

    def send_body() -> None:
        nonlocal sent
        block = b"%x\r\n%s\r\n" % (BLOCK, b" " * BLOCK) if chunked else b" " * BLOCK
        try:
            while sent < size:
                sock.sendall(block)
                sent += BLOCK
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        except OSError:
            pass  # the server closed the connection

    sender = threading.Thread(target=send_body)
    sender.start()
    status_line = sock.makefile("rb").readline()
    seconds = time.monotonic() - start
    sender.join(timeout=120)
    sock.close()
    return Upload(int(status_line.split()[1]), seconds, sent)


@pytest.mark.parametrize(
    ("headers", "chunked", "status"),
    [
        ({}, False, 401),
        ({}, True, 401),
        (AUTH, False, 413),
        (AUTH, True, 413),
    ],
    ids=["stranger", "stranger-chunked", "over-the-limit", "over-the-limit-chunked"],
)
def test_a_100_mb_body_is_refused_at_once_and_not_taken_in(
    served: Served, headers: dict[str, str], chunked: bool, status: int
) -> None:
    memory_before = peak_memory_mib(served.pid)

    answer = upload(served.port, headers, 100 * MiB, chunked=chunked)

    assert answer.status == status
    assert answer.seconds < 5
    assert answer.sent < 20 * MiB, "the server kept the connection open and took it all"
    assert peak_memory_mib(served.pid) - memory_before < 20


def test_a_body_within_the_limit_is_served(served: Served) -> None:
    body = json.dumps({"version": "4", "status": "firing", "alerts": []}).encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
            % (TOKEN.encode(), len(body), body)
        )
        status_line = sock.makefile("rb").readline()

    assert status_line.split()[1] == b"200"
