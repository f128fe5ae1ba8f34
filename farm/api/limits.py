# SPDX-License-Identifier: Apache-2.0
"""How much of a request the API takes in, whoever sends it."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CloseUnreadBodies:
    """ASGI middleware: an answer sent before its request's body was read in full (a
    401, a 413) says ``Connection: close``. uvicorn then drops the connection and the
    sender stops, instead of uvicorn reading the rest of a 100 MB body to discard it
    so the connection can be kept alive."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        unread = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers

        async def receive_counting() -> Message:
            nonlocal unread
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                unread = False
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and unread:
                closing = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": closing}
            await send(message)

        await self.app(scope, receive_counting, send_closing)
