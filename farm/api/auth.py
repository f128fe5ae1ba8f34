# SPDX-License-Identifier: Apache-2.0
"""The API's bearer token: where it comes from and how a request proves it.

The token is read once at start-up from ``$FARM_API_TOKEN`` or the configured token
file, compared in constant time, and never logged or echoed back. ``TokenGate`` checks
it from the headers alone, before anything reads a byte of the body: a stranger's
100 MB body costs a header parse, not 500 MB of memory.
"""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from farm.config import FarmConfig
from farm.errors import UserError

TOKEN_ENV = "FARM_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
MIN_TOKEN_LENGTH = 16
_NEW_TOKEN_HINT = (
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path} && chmod 600 {path}"  # noqa: S105 - a command
)


def token_file(config: FarmConfig) -> Path:
    return config.api.token_file or config.data_dir / "api-token"


def load_token(config: FarmConfig) -> str:
    """The token from the environment, else from the token file; a UserError if neither."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    source = f"${TOKEN_ENV}"
    if not token:
        path = token_file(config)
        source = str(path)
        hint = _NEW_TOKEN_HINT.format(path=path)
        try:
            mode = path.stat().st_mode
            token = path.read_text().strip()
        except FileNotFoundError:
            raise UserError(
                f"farm api needs a bearer token: ${TOKEN_ENV} is unset and {path} does not exist",
                hint=hint,
            ) from None
        except OSError as exc:
            raise UserError(f"cannot read the API token file {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(
                f"the API token file {path} is readable by others (mode {mode & 0o777:o})",
                hint=f"chmod 600 {path}",
            )
    if len(token) < MIN_TOKEN_LENGTH:
        raise UserError(
            f"the API token from {source} is too short ({len(token)} characters, "
            f"need at least {MIN_TOKEN_LENGTH})",
            hint=_NEW_TOKEN_HINT.format(path=token_file(config)),
        )
    return token


def token_matches(authorization: str, expected: str) -> bool:
    """Whether an Authorization header is ``Bearer <expected>`` (constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


class TokenGate:
    """ASGI middleware: every HTTP request needs the token, except ``open_paths``.

    It answers 401 without reading the body. Deny by default: a route added later (or
    the OpenAPI schema) is behind the token without anyone remembering to ask for it."""

    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self.token = token
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            authorization = Headers(scope=scope).get("authorization", "")
            if not token_matches(authorization, self.token):
                await _refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"WWW-Authenticate": "Bearer"}
    answer = JSONResponse({"detail": "missing or wrong bearer token"}, 401, headers)
    await answer(scope, receive, send)
