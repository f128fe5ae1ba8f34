# SPDX-License-Identifier: Apache-2.0
"""Read-only JSON views of series, runs and bisections (and a run's console, which
the run page's script polls)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from farm.ending import RunEnding
from farm.store.base import MAX_ID
from farm.store.bisect import Bisection, BisectState
from farm.store.runs import TERMINAL, Crash, Run, RunState
from farm.store.samples import ConsoleLine
from farm.store.series import Series

router = APIRouter()
T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=1000)]
# Bounded so that a number the database cannot hold is a 422, not an overflow (500).
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
Ident = Annotated[int, Path(ge=1, le=MAX_ID)]
SeriesFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SeriesView(_View):
    id: int
    title: str
    version: int
    total: int
    base_commit: str | None
    cover_message_id: str | None
    created_at: dt.datetime


class PatchView(_View):
    index: int
    subject: str
    message_id: str | None
    author: str


class RunView(_View):
    id: int
    kind: str
    series_id: int | None
    bisection_id: int | None
    upto: int
    commit: str
    host: str
    load: str
    state: RunState
    verdict: str | None
    reasons: list[str]  # the ending's findings in words
    ending: RunEnding
    kernel_release: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


class CrashView(_View):
    id: int
    title: str
    kind: str
    signature: str
    host: str
    frames: list[str]
    seen_at: dt.datetime


class BisectionView(_View):
    id: int
    run_id: int
    series_id: int | None
    regression: str
    regression_kind: str
    state: BisectState
    confidence: float
    requested_by: str
    culprit: int | None
    posterior: list[float]
    created_at: dt.datetime
    updated_at: dt.datetime


class SeriesDetail(SeriesView):
    patches: list[PatchView]
    runs: list[RunView]


class RunDetail(RunView):
    details: dict[str, Any]
    crashes: list[CrashView]


class BisectionDetail(BisectionView):
    hosts: list[str]
    max_hours: float | None
    result: dict[str, Any]
    runs: list[RunView]


def session(request: Request) -> Iterator[Session]:
    with request.app.state.store.session() as db:
        yield db


Db = Annotated[Session, Depends(session)]


def _page(db: Session, query: Select[T], limit: int, offset: int) -> list[T]:
    return list(db.scalars(query.limit(limit).offset(offset)))


def _get(db: Session, table: type[T], ident: int) -> T:
    row = db.get(table, ident)
    if row is None:
        raise HTTPException(404, detail=f"no {table.__name__.lower()} {ident}")
    return row


@router.get("/series", response_model=list[SeriesView])
def list_series(db: Db, limit: Limit = 100, offset: Offset = 0) -> list[Series]:
    return _page(db, select(Series).order_by(Series.id.desc()), limit, offset)


@router.get("/series/{ident}", response_model=SeriesDetail)
def get_series(db: Db, ident: Ident) -> dict[str, Any]:
    series = _get(db, Series, ident)
    runs = db.scalars(select(Run).where(Run.series_id == ident).order_by(Run.id))
    return {
        **SeriesView.model_validate(series).model_dump(),
        "patches": series.patches,
        "runs": list(runs),
    }


@router.get("/runs", response_model=list[RunView])
def list_runs(
    db: Db,
    state: RunState | None = None,
    host: str | None = None,
    series: SeriesFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[Run]:
    query = select(Run).order_by(Run.id.desc())
    if state is not None:
        query = query.where(Run.state == state)
    if host is not None:
        query = query.where(Run.host == host)
    if series is not None:
        query = query.where(Run.series_id == series)
    return _page(db, query, limit, offset)


@router.get("/runs/{ident}", response_model=RunDetail)
def get_run(db: Db, ident: Ident) -> dict[str, Any]:
    run = _get(db, Run, ident)
    crashes = db.scalars(select(Crash).where(Crash.run_id == ident).order_by(Crash.id))
    return {**RunView.model_validate(run).model_dump(), "details": run.details, "crashes": crashes}


@router.get("/bisections", response_model=list[BisectionView])
def list_bisections(
    db: Db, state: BisectState | None = None, limit: Limit = 100, offset: Offset = 0
) -> list[Bisection]:
    query = select(Bisection).order_by(Bisection.id.desc())
    if state is not None:
        query = query.where(Bisection.state == state)
    return _page(db, query, limit, offset)


@router.get("/bisections/{ident}", response_model=BisectionDetail)
def get_bisection(db: Db, ident: Ident) -> dict[str, Any]:
    bisection = _get(db, Bisection, ident)
    runs = db.scalars(select(Run).where(Run.bisection_id == ident).order_by(Run.id))
    return {
        **BisectionView.model_validate(bisection).model_dump(),
        "hosts": bisection.hosts,
        "max_hours": bisection.max_hours,
        "result": bisection.result,
        "runs": list(runs),
    }


class ConsoleLineView(_View):
    id: int
    ts: float
    line: str


class ConsoleView(BaseModel):
    state: RunState
    verdict: str | None
    done: bool
    lines: list[ConsoleLineView]


@router.get("/runs/{ident}/console", response_model=ConsoleView)
def get_console(db: Db, ident: Ident, after: Offset = 0, limit: Limit = 200) -> dict[str, Any]:
    """The run's newest ``limit`` console lines after line id ``after``, oldest first."""
    run = _get(db, Run, ident)
    query = (
        select(ConsoleLine)
        .where(ConsoleLine.run_id == ident, ConsoleLine.id > after)
        .order_by(ConsoleLine.id.desc())
        .limit(limit)
    )
    return {
        "state": run.state,
        "verdict": run.verdict,
        "done": run.state in TERMINAL,
        "lines": list(reversed(db.scalars(query).all())),
    }
