# SPDX-License-Identifier: Apache-2.0
"""What the API reads before it knows who is asking: headers only.

The token is checked before any byte of the body is read, and an authorized body is
read only up to the configured limit. The app is driven through its ASGI interface as
uvicorn drives it, so a test sees exactly how much of the body the app asked for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from farm.api import create_app
from farm.config import ApiConfig
from farm.store import Store

from .conftest import AUTH, TOKEN

MiB = 1024 * 1024
CHUNK = 64 * 1024


@dataclass
class Exchange:
    """One request as a server hands it to the app, chunk by chunk."""

    headers: dict[str, str]
    body_size: int
    chunked: bool = False
    read: int = 0  # body bytes the app asked for
    status: int = 0
    answer: bytes = b""

    async def receive(self) -> dict[str, Any]:
        if self.read >= self.body_size:
            return {"type": "http.disconnect"}
        chunk = min(CHUNK, self.body_size - self.read)
        self.read += chunk
        more = self.read < self.body_size
        return {"type": "http.request", "body": b" " * chunk, "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.answer += message.get("body", b"")

    def scope(self) -> dict[str, Any]:
        headers = {"content-type": "application/json", **self.headers}
        if not self.chunked:
            headers["content-length"] = str(self.body_size)
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/alerts",
            "raw_path": b"/api/alerts",
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 9479),
        }


def post(store: Store, exchange: Exchange, max_body: int = MiB) -> Exchange:
    app = create_app(store, TOKEN, max_body=max_body)
    asyncio.run(app(exchange.scope(), exchange.receive, exchange.send))  # type: ignore[arg-type]
    return exchange


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}],
    ids=["no-token", "wrong-token"],
)
def test_a_request_without_the_token_is_refused_before_its_body_is_read(
    store: Store, headers: dict[str, str], chunked: bool
) -> None:
    refused = post(store, Exchange(headers, body_size=100 * MiB, chunked=chunked))

    assert refused.status == 401
    assert refused.read == 0
    assert b"bearer token" in refused.answer


def test_an_authorized_body_over_the_limit_is_refused_without_being_read(store: Store) -> None:
    refused = post(store, Exchange(AUTH, body_size=100 * MiB))

    assert refused.status == 413
    assert refused.read == 0


def test_a_chunked_body_is_counted_while_read_and_refused_past_the_limit(store: Store) -> None:
    refused = post(store, Exchange(AUTH, body_size=100 * MiB, chunked=True))

    assert refused.status == 413
    assert MiB < refused.read <= MiB + CHUNK


def test_the_limit_comes_from_the_api_section_of_the_configuration(store: Store) -> None:
    assert ApiConfig().max_body_bytes == MiB
    small = ApiConfig(max_body_bytes=4096).max_body_bytes

    refused = post(store, Exchange(AUTH, body_size=8192), max_body=small)
    fits = post(store, Exchange(AUTH, body_size=2048), max_body=small)

    assert refused.status == 413
    assert fits.status == 422  # read in full: 2 KiB of spaces is not a notification


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/api/nothing-here"])
def test_the_schema_and_docs_are_not_served_without_the_token(store: Store, path: str) -> None:
    with TestClient(create_app(store, TOKEN)) as client:
        answer = client.get(path)

    assert answer.status_code == 401
    assert TOKEN not in answer.text


def test_the_schema_is_served_with_the_token_and_the_docs_pages_are_off(store: Store) -> None:
    with TestClient(create_app(store, TOKEN)) as client:
        schema = client.get("/openapi.json", headers=AUTH)
        pages = [client.get(p, headers=AUTH).status_code for p in ("/docs", "/redoc")]

    assert "/api/alerts" in schema.json()["paths"]
    assert pages == [404, 404]
