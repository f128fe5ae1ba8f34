# SPDX-License-Identifier: Apache-2.0
"""The API's tokens: where they come from and how a request proves one.

Two tokens: the read token (``$FARM_API_TOKEN`` or ``[api] token_file``) sees every
page and JSON view; the admin token (``$FARM_API_ADMIN_TOKEN`` or ``[api]
admin_token_file``, optional) also cancels runs, starts bisections and switches
maintenance. Both are read once at start-up, compared in constant time, and never
logged or echoed back. ``TokenGate`` checks the bearer header or the browser's session
cookie from the headers alone, before anything reads a byte of the body: a stranger's
100 MB body costs a header parse, not 500 MB of memory.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import http.cookies
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from farm.config import FarmConfig, read_private
from farm.errors import UserError

TOKEN_ENV = "FARM_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
ADMIN_TOKEN_ENV = "FARM_API_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
MIN_TOKEN_LENGTH = 16
_NEW_TOKEN_HINT = (
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path} && chmod 600 {path}"  # noqa: S105 - a command
)


def token_file(config: FarmConfig) -> Path:
    return config.api.token_file or config.data_dir / "api-token"


def admin_token_file(config: FarmConfig) -> Path:
    return config.api.admin_token_file or config.data_dir / "api-admin-token"


def load_token(config: FarmConfig) -> str:
    """The read token from the environment, else from the token file; a UserError if
    neither."""
    token = _read_token(TOKEN_ENV, token_file(config))
    if token is None:
        path = token_file(config)
        raise UserError(
            f"farm api needs a bearer token: ${TOKEN_ENV} is unset and {path} does not exist",
            hint=_NEW_TOKEN_HINT.format(path=path),
        )
    return token


def load_admin_token(config: FarmConfig) -> str | None:
    """The admin token (actions: cancel, bisect, maintenance), or None when neither
    ``$FARM_API_ADMIN_TOKEN`` nor the admin token file exists: then the web view and the
    API are read-only."""
    return _read_token(ADMIN_TOKEN_ENV, admin_token_file(config))


def _read_token(variable: str, path: Path) -> str | None:
    token = os.environ.get(variable, "").strip()
    source = f"${variable}"
    if not token:
        source = str(path)
        try:
            token = read_private(path, "API token").strip()
        except UserError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None  # no token file: no such token
            raise
    if len(token) < MIN_TOKEN_LENGTH:
        raise UserError(
            f"the API token from {source} is too short ({len(token)} characters, "
            f"need at least {MIN_TOKEN_LENGTH})",
            hint=_NEW_TOKEN_HINT.format(path=path),
        )
    return token


def token_matches(authorization: str, expected: str) -> bool:
    """Whether an Authorization header is ``Bearer <expected>`` (constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


class Role(enum.IntEnum):
    """What a request may do: READ sees everything, ADMIN also acts."""

    READ = 1
    ADMIN = 2


COOKIE = "farm_session"


class Keys:
    """The tokens, and the key that signs browser sessions and their CSRF tokens.

    A browser logs in once with a token (``POST /login``) and gets a session cookie
    ``<role>.<expiry>.<nonce>.<signature>``: HttpOnly (no script reads it) and
    SameSite=Strict (no other site's page sends it). The signing key is new at every
    start, so restarting ``farm api`` logs every browser out; a rotated token does too.
    Forms that act carry a CSRF token bound to the session, checked on every POST.
    """

    def __init__(self, read: str, admin: str | None, session_hours: float = 12.0) -> None:
        if admin is not None and hmac.compare_digest(admin.encode(), read.encode()):
            raise UserError(
                "the admin token is the read token: every reader could act",
                hint="make a new admin token: " + _NEW_TOKEN_HINT.format(path="api-admin-token"),
            )
        self.read = read
        self.admin = admin
        self.session_seconds = int(session_hours * 3600)
        self._key = secrets.token_bytes(32)

    def bearer_role(self, authorization: str) -> Role | None:
        if self.admin is not None and token_matches(authorization, self.admin):
            return Role.ADMIN
        return Role.READ if token_matches(authorization, self.read) else None

    def token_role(self, token: str) -> Role | None:
        """The role a token typed into the login form gives."""
        return self.bearer_role(f"Bearer {token}")

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, role: Role) -> str:
        body = f"{role.value}.{int(time.time()) + self.session_seconds}.{secrets.token_hex(8)}"
        return f"{body}.{self._sign(body)}"

    def session_role(self, cookie: str) -> Role | None:
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        role, expires, _nonce = body.split(".")
        if int(expires) < time.time():
            return None
        return Role(int(role))

    def csrf(self, cookie: str) -> str:
        return self._sign(f"csrf:{cookie}")

    def csrf_ok(self, cookie: str, given: str) -> bool:
        return bool(cookie) and hmac.compare_digest(given.encode(), self.csrf(cookie).encode())


class TokenGate:
    """ASGI middleware: every HTTP request needs a token (bearer) or a session cookie,
    except ``open_paths`` and ``open_prefixes``; the role it proves is put in the request
    state (``request.state.role``).

    It answers without reading the body: 401 to an API client, a redirect to the login
    form to a browser asking for a page. Deny by default: a route added later (or the
    OpenAPI schema) is behind the token without anyone remembering to ask for it."""

    def __init__(
        self,
        app: ASGIApp,
        keys: Keys,
        open_paths: frozenset[str],
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    def _role(self, scope: Scope) -> Role | None:
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        if authorization is not None:
            return self.keys.bearer_role(authorization)
        cookie = _cookie(headers, COOKIE)
        if not cookie:
            return None
        if scope["method"] not in ("GET", "HEAD") and scope["path"].startswith("/api/"):
            return None  # the JSON API acts only for a bearer: a cookie is sent by any form
        return self.keys.session_role(cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            role = self._role(scope)
            scope.setdefault("state", {})["role"] = role
            if role is None and not (
                path in self.open_paths or path.startswith(self.open_prefixes)
            ):
                await _refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _cookie(headers: Headers, name: str) -> str:
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except http.cookies.CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    answer: Response
    browser = "text/html" in Headers(scope=scope).get("accept", "")
    if scope["method"] == "GET" and browser and not scope["path"].startswith("/api/"):
        target = quote(scope["path"], safe="/")
        answer = RedirectResponse(f"/login?next={target}", 303)
    else:
        headers = {"WWW-Authenticate": "Bearer"}
        answer = JSONResponse({"detail": "missing or wrong bearer token"}, 401, headers)
    await answer(scope, receive, send)
