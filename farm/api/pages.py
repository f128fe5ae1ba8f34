# SPDX-License-Identifier: Apache-2.0
"""The web view: server-rendered pages of series, runs, bisections and hosts, the
browser login, and the admin's actions.

Pages are Jinja2 templates (farm/api/templates, autoescaped: subjects, console lines
and crash titles are hostile input) over the queries of farm.api.pagedata. Every
answer forbids inline scripts and foreign resources (Content-Security-Policy): the
only script is farm/api/static/live.js. An action (cancel a run, start a bisection,
maintenance on/off) is a POST that needs the admin role; from a browser it also needs
the CSRF token of its session and, when the browser names one, our own Origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from farm.api import pagedata, svg
from farm.api.auth import COOKIE, Keys, Role
from farm.api.views import Db, Ident, Offset, SeriesFilter
from farm.config import FarmConfig
from farm.errors import UserError
from farm.report import render
from farm.report.text import run_table, verdict, what_regressed
from farm.scheduler.api import cancel_run
from farm.scheduler.bisecting import request_in
from farm.scheduler.health import set_by_human
from farm.scheduler.report_input import build_input
from farm.store.hosts import Health
from farm.store.runs import TERMINAL, RunState

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LORE = "https://lore.kernel.org/r/"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make Origin "null"
}
HostName = Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]

router = APIRouter()


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(age=pagedata.age, lore=lambda mid: pagedata.lore_link(LORE, mid))
    env.filters["printable"] = printable
    return env


def printable(text: str) -> str:
    """Control characters of a console or subject (an ESC of a terminal sequence, a
    NUL) shown as \\x1b rather than passed to the browser; markup is escaped later."""
    return "".join(c if c.isprintable() or c in "\t\n" else f"\\x{ord(c):02x}" for c in text)


ENV = environment()


def _config(request: Request) -> FarmConfig | None:
    config: FarmConfig | None = request.app.state.config
    return config


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    keys: Keys = request.app.state.keys
    role: Role | None = getattr(request.state, "role", None)
    cookie = request.cookies.get(COOKIE, "")
    html = ENV.get_template(template).render(
        role=role.name.lower() if role else None,
        admin=role == Role.ADMIN,
        csrf=keys.csrf(cookie) if cookie else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def _missing(what: str) -> HTTPException:
    return HTTPException(404, detail=f"no {what}")


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/runs", 303)


@router.get("/series", response_class=HTMLResponse)
def series_list(request: Request, db: Db, offset: Offset = 0) -> HTMLResponse:
    rows, page = pagedata.series_list(db, offset)
    return _page(request, "series_list.html", rows=rows, page=page)


@router.get("/series/{ident}", response_class=HTMLResponse)
def series_page(request: Request, db: Db, ident: Ident) -> HTMLResponse:
    found = pagedata.series_page(db, ident)
    if found is None:
        raise _missing(f"series {ident}")
    return _page(request, "series.html", s=found)


@router.get("/runs", response_class=HTMLResponse)
def runs_list(
    request: Request,
    db: Db,
    state: RunState | None = None,
    host: Annotated[str | None, Query(max_length=64)] = None,
    series: SeriesFilter = None,
    offset: Offset = 0,
) -> HTMLResponse:
    wanted = pagedata.RunFilter(state, host, series)
    rows, page = pagedata.runs_list(db, wanted, offset)
    return _page(request, "runs.html", rows=rows, page=page, wanted=wanted, states=list(RunState))


@router.get("/runs/{ident}", response_class=HTMLResponse)
def run_page(request: Request, db: Db, ident: Ident) -> HTMLResponse:
    found = pagedata.run_page(db, _config(request), ident)
    if found is None:
        raise _missing(f"run {ident}")
    plots = [
        (
            plot.counter,
            svg.line_plot(
                plot.counter,
                [(ln.label, ln.points, "baseline" if ln.baseline else "run") for ln in plot.lines],
            ),
        )
        for plot in found.plots
    ]
    return _page(
        request,
        "run.html",
        r=found,
        plots=plots,
        live=found.run.state not in TERMINAL,
        last_line=found.console[-1].id if found.console else 0,
    )


@router.get("/bisections", response_class=HTMLResponse)
def bisections_list(request: Request, db: Db, offset: Offset = 0) -> HTMLResponse:
    rows, page = pagedata.bisections_list(db, offset)
    return _page(request, "bisections.html", rows=rows, page=page)


@router.get("/bisections/{ident}", response_class=HTMLResponse)
def bisection_page(request: Request, db: Db, ident: Ident) -> HTMLResponse:
    found = pagedata.bisection_page(db, ident)
    if found is None:
        raise _missing(f"bisection {ident}")
    leader = found.odds.index(found.leader) if found.leader else None
    chart = svg.bars(
        "posterior per patch",
        [(f"{o.index:02d}" if o.index else "none", o.probability) for o in found.odds],
        leader,
    )
    report = found.report
    text = (
        {"what": what_regressed(report), "verdict": verdict(report), "runs": run_table(report)}
        if report
        else None
    )
    return _page(request, "bisection.html", b=found, chart=chart, report=text)


@router.get("/bisections/{ident}/report", response_class=HTMLResponse)
def bisection_report(request: Request, db: Db, ident: Ident) -> HTMLResponse:
    """The report exactly as `farm report ID --format html` writes it."""
    if pagedata.bisection_page(db, ident) is None:
        raise _missing(f"bisection {ident}")
    return HTMLResponse(render.to_html(build_input(db, ident)), headers=SECURITY_HEADERS)


@router.get("/hosts", response_class=HTMLResponse)
def hosts_list(request: Request, db: Db) -> HTMLResponse:
    return _page(request, "hosts.html", rows=pagedata.hosts_list(db, _config(request)))


@router.get("/hosts/{name}", response_class=HTMLResponse)
def host_page(request: Request, db: Db, name: HostName) -> HTMLResponse:
    found = pagedata.host_page(db, _config(request), name)
    if found is None:
        raise _missing(f"host {name}")
    return _page(request, "host.html", h=found, health=Health)


# -- the browser login --------------------------------------------------------------


def _safe_next(target: str) -> str:
    """Only a path of this site: never //evil.example or https://evil.example."""
    return target if target.startswith("/") and not target.startswith("//") else "/runs"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/runs") -> HTMLResponse:
    return _page(request, "login.html", target=_safe_next(next), error=None)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the body limit still applies: it is read through it)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=20).items()}


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await _form(request)
    keys: Keys = request.app.state.keys
    target = _safe_next(form.get("next", "/runs"))
    role = keys.token_role(form.get("token", "").strip())
    if role is None:
        return _page(request, "login.html", 401, target=target, error="wrong token")
    answer = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    answer.set_cookie(
        COOKIE,
        keys.new_session(role),
        max_age=keys.session_seconds,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/",
    )
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _admin_or_reader(request, Role.READ)
    answer = RedirectResponse("/login", 303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


# -- actions ------------------------------------------------------------------------


async def _admin_or_reader(request: Request, needed: Role) -> dict[str, str]:
    """The form of an action, once the request may take it: the role, and for a
    browser session the CSRF token and, when sent, an Origin that is ours."""
    form = await _form(request)
    role: Role | None = getattr(request.state, "role", None)
    if role is None or role < needed:
        raise HTTPException(403, detail="this needs the admin token")
    if "authorization" not in request.headers:  # a browser: its cookie is ambient
        keys: Keys = request.app.state.keys
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin is not None and origin != own:
            raise HTTPException(403, detail=f"form posted from {origin}, not {own}")
        if not keys.csrf_ok(request.cookies.get(COOKIE, ""), form.get("csrf", "")):
            raise HTTPException(403, detail="missing or stale form token: reload the page")
    return form


def _who(request: Request) -> str:
    """Who acted, as far as farm knows: the admin token, from which address."""
    return f"web admin from {request.client.host if request.client else 'unknown'}"


@router.post("/runs/{ident}/cancel")
async def cancel(request: Request, ident: Ident) -> Response:
    await _admin_or_reader(request, Role.ADMIN)
    try:
        cancel_run(request.app.state.store, ident)
    except UserError as exc:
        raise HTTPException(404, detail=exc.message) from exc
    return RedirectResponse(f"/runs/{ident}", 303)


@router.post("/runs/{ident}/bisect")
async def bisect(request: Request, ident: Ident) -> Response:
    """Through the scheduler's one request_in: the same checks as `farm bisect start`;
    the beat starts it."""
    form = await _admin_or_reader(request, Role.ADMIN)
    with request.app.state.store.session() as db:
        try:
            req = request_in(
                db,
                ident,
                regression=form.get("regression") or None,
                confidence=request.app.state.confidence,
                requested_by=_who(request),
            )
        except UserError as exc:
            raise HTTPException(409, detail=exc.message) from exc
    return RedirectResponse(f"/bisections/{req.bisection_id}", 303)


@router.post("/hosts/{name}/maintenance")
async def maintenance(request: Request, name: HostName) -> Response:
    """On: the host gets no work; off: UNKNOWN, and its health check (when it has them)
    is queued for the reconciler to send."""
    form = await _admin_or_reader(request, Role.ADMIN)
    config = _config(request)
    if config is None:
        raise HTTPException(409, detail="farm api runs without a farm.toml: no hosts")
    mode = form.get("mode")
    if mode not in ("on", "off"):
        raise HTTPException(422, detail="mode must be on or off")
    state = Health.MAINTENANCE if mode == "on" else Health.UNKNOWN
    reason = form.get("reason", "").strip()[:500] or f"maintenance {mode} (web)"
    with request.app.state.store.session() as db:
        try:
            set_by_human(db, config, name, state, reason=reason, by=_who(request))
        except UserError as exc:
            raise HTTPException(404, detail=exc.message) from exc
    return RedirectResponse(f"/hosts/{name}", 303)
