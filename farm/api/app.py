# SPDX-License-Identifier: Apache-2.0
"""The FastAPI application behind ``farm api``: JSON API, alert webhook, web view."""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import text
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from farm.api import pages, views
from farm.api.alerts import Notification, record
from farm.api.auth import Keys, TokenGate
from farm.api.limits import CloseUnreadBodies
from farm.api.views import Db
from farm.config import FarmConfig
from farm.store import Store
from farm.store.alerts import AlertAction


class OutcomeView(BaseModel):
    fingerprint: str
    action: AlertAction | Literal["rejected"]  # rejected: too malformed to record
    repeat: bool
    bisection: int | None
    detail: str


class AlertsAnswer(BaseModel):
    received: int
    bisections_requested: list[int]
    outcomes: list[OutcomeView]


OPEN_PATHS = frozenset({"/healthz", "/login"})
OPEN_PREFIXES = ("/static/",)
MAX_BODY = 1024 * 1024


def create_app(
    store: Store,
    token: str,
    *,
    admin_token: str | None = None,
    config: FarmConfig | None = None,
    confidence: float = 0.95,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The API and web view over ``store``. Every request but /healthz, the login form
    and the static files needs ``Authorization: Bearer <token>`` (the read token or
    ``admin_token``) or a session cookie from the login form (the OpenAPI schema too; the
    docs pages are off: they load scripts from a CDN). Actions need the admin token.
    Bodies over ``max_body`` bytes ([api] max_body_bytes) are refused with 413, counted
    while read when there is no Content-Length. Bisections that alerts and the web view
    request stop at ``confidence`` ([bisect] confidence). ``config`` names the hosts
    (the hosts pages, maintenance) and the loads (which counters a run page plots)."""
    app = FastAPI(
        title="farm",
        summary="alert webhook, read-only views and the web view",
        docs_url=None,
        redoc_url=None,
    )
    session_hours = config.api.session_hours if config else 12.0
    # The last added runs first: the token before the size, so a stranger gets 401
    # whatever the size, and neither reads the body to refuse it; an early answer
    # closes the connection (CloseUnreadBodies) so the rest is never sent.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body)
    keys = Keys(token, admin_token, session_hours)
    app.add_middleware(TokenGate, keys=keys, open_paths=OPEN_PATHS, open_prefixes=OPEN_PREFIXES)
    app.add_middleware(CloseUnreadBodies)
    app.state.store = store
    app.state.confidence = confidence
    app.state.keys = keys
    app.state.config = config
    app.state.secure_cookies = config.api.secure_cookies if config else False
    app.include_router(views.router, prefix="/api")
    app.add_api_route("/api/alerts", receive_alerts, methods=["POST"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    return app


def receive_alerts(notification: Notification, request: Request) -> AlertsAnswer:
    """Grafana or Alertmanager webhook: record, request bisections, answer at once.

    One short transaction, committed before the answer so a 200 means recorded (a
    failure is a 500 and the sender retries); the bisection itself is started later by
    the scheduler's reconciler, so the sender never waits for a build or a boot.
    """
    store: Store = request.app.state.store
    with store.session() as db:
        outcomes = record(db, notification, confidence=request.app.state.confidence)
    return AlertsAnswer(
        received=len(outcomes),
        bisections_requested=[
            o.bisection_id
            for o in outcomes
            if o.action == AlertAction.BISECTION_REQUESTED and not o.repeat and o.bisection_id
        ],
        outcomes=[
            OutcomeView(
                fingerprint=o.fingerprint,
                action=o.action,
                repeat=o.repeat,
                bisection=o.bisection_id,
                detail=o.detail,
            )
            for o in outcomes
        ],
    )


def healthz(db: Db) -> dict[str, str]:
    """Liveness for systemd and compose: the process serves and the store answers."""
    db.execute(text("SELECT 1"))
    return {"status": "ok"}
