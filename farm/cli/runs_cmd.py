# SPDX-License-Identifier: Apache-2.0
"""farm runs list: the runs the store knows, filtered by series, host, verdict, state, kind."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from farm.cli.common import emit_json, get_config, get_store, json_option
from farm.ending import Verdict
from farm.store.runs import Run, RunKind, RunState


@click.group()
def runs() -> None:
    """Soak runs: baselines, patched kernels, bisect steps, health checks."""


@runs.command("list")
@click.option("--series", "series_id", type=int, metavar="ID", help="Runs of this series.")
@click.option("--host", metavar="NAME", help="Runs on this host.")
@click.option("--verdict", type=click.Choice([v.value for v in Verdict], case_sensitive=False))
@click.option("--state", type=click.Choice([s.value for s in RunState], case_sensitive=False))
@click.option("--kind", type=click.Choice([k.value for k in RunKind], case_sensitive=False))
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Newest N.")
@json_option
@click.pass_context
def list_runs(
    ctx: click.Context,
    series_id: int | None,
    host: str | None,
    verdict: str | None,
    state: str | None,
    kind: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Runs, newest first, that match every filter given."""
    if host is not None:
        get_config(ctx).host(host)  # a UserError naming the known hosts
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if series_id is not None:
        query = query.where(Run.series_id == series_id)
    if host is not None:
        query = query.where(Run.host == host)
    if verdict is not None:
        query = query.where(Run.verdict == Verdict(verdict.upper()))
    if state is not None:
        query = query.where(Run.state == RunState(state.lower()))
    if kind is not None:
        query = query.where(Run.kind == RunKind(kind.lower()))
    with get_store(ctx).session() as session:
        rows = [run_json(run) for run in session.scalars(query)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no runs match; all runs: farm runs list", err=True)
    for row in rows:
        series = f"series {row['series']}" if row["series"] is not None else "-"
        kernel = "base" if row["upto"] == 0 else f"+{row['upto']:02d}"
        click.echo(
            f"{row['id']:5d}  {row['host']:<14} {row['kind']:<9} {kernel:<5} {series:<10} "
            f"{row['state']:<10} {row['verdict'] or '-':<5}  {'; '.join(row['reasons'])}"
        )


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "host": run.host,
        "kind": str(run.kind),
        "series": run.series_id,
        "bisection": run.bisection_id,
        "upto": run.upto,
        "commit": run.commit,
        "load": run.load,
        "soak_seconds": run.soak_seconds,
        "state": str(run.state),
        "verdict": str(run.verdict) if run.verdict else None,
        "reasons": list(run.reasons),
        "kernel_release": run.kernel_release,
        "created_at": run.created_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
    }
