# SPDX-License-Identifier: Apache-2.0
"""farm worker / beat / status / logs / cancel: run and watch the scheduler."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import click
from sqlalchemy import select

from farm.cli.common import (
    emit_json,
    get_config,
    get_store,
    json_option,
    log_level_option,
    printable,
)


@click.command()
@click.option("--hosts", help="Comma-separated hosts whose queues to serve (default: all).")
@click.option("--name", default=None, help="Worker name (default: farm-<hostname>).")
@click.option(
    "--concurrency",
    type=int,
    default=0,
    help="Threads (default: hosts + 1, + 1 to build; 4 for all sim hosts).",
)
@click.option(
    "--build/--no-build",
    "build",
    default=None,
    help="Serve the build queue: build kernels (default: [worker] build, true).",
)
@click.option(
    "--join",
    "token_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve the farm of this join token (farm join-token): its broker and database.",
)
@log_level_option
@click.pass_context
def worker(
    ctx: click.Context,
    hosts: str | None,
    name: str | None,
    concurrency: int,
    build: bool | None,
    token_file: Path | None,
    log_level: str,
) -> None:
    """Run a Celery worker serving the queues of the given hosts and the control queue,
    and the build queue if this machine builds kernels."""
    from farm.scheduler.app import (
        BUILD_QUEUE,
        CONTROL_QUEUE,
        default_concurrency,
        get_app,
        queue_for,
    )
    from farm.scheduler.workers import Building, serving

    config = get_config(ctx)
    if token_file is not None:
        from farm.scheduler.join import joined, read_token

        config = ctx.find_root().obj["config"] = joined(config, read_token(token_file))
    names = (
        [h.strip() for h in hosts.split(",") if h.strip()]
        if hosts
        else [h.name for h in config.hosts]
    )
    for host in names:
        config.host(host)  # a UserError naming the known hosts
    builds = config.worker.build if build is None else build
    queues = [CONTROL_QUEUE, *(queue_for(h) for h in names), *([BUILD_QUEUE] if builds else [])]
    building = Building(builds, config.worker.artefact_address if builds else None)
    app = get_app(config)
    worker_name = f"{name or 'farm'}@{socket.gethostname()}"
    # Threads: steps mostly wait on SSH and builds; one slow host must not block others.
    every = config.scheduler.heartbeat_seconds
    with serving(get_store(ctx), worker_name, names, every, building):
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency or default_concurrency(config, names) + builds}",
                f"--queues={','.join(queues)}",
                f"--hostname={worker_name}",
                f"--loglevel={log_level.upper()}",
                "--without-gossip",
                "--without-mingle",
            ]
        )


@click.command()
@log_level_option
@click.pass_context
def beat(ctx: click.Context, log_level: str) -> None:
    """Run celery beat: the periodic reconciler that re-drives lost work."""
    from farm.scheduler.app import get_app

    config = get_config(ctx)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    get_app(config).Beat(loglevel=log_level.upper()).run()


@click.command()
@json_option
@click.option("--all", "show_all", is_flag=True, help="Include finished runs of the last day.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """Hosts and runs: state, progress, verdicts."""
    from farm.scheduler.status import farm_status

    data = farm_status(get_config(ctx), get_store(ctx), include_recent=show_all)
    if as_json:
        emit_json(data)
        return
    from farm.scheduler.status import render

    render(data)


@click.command()
@click.argument("run_id", type=int)
@click.option("--lines", type=int, default=200, show_default=True, help="Console lines to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new console lines.")
@json_option
@click.pass_context
def logs(ctx: click.Context, run_id: int, lines: int, follow: bool, as_json: bool) -> None:
    """A run's console lines, crashes and verdict.

    With --json, one object: {"run", "host", "state", "verdict", "reasons",
    "crashes": [{"title", "kind", "uptime_seconds"}], "lines"}.
    """
    from farm.errors import UserError
    from farm.store.runs import Crash, Run
    from farm.store.samples import ConsoleLine

    if as_json and follow:
        raise UserError("--json prints one object and ends; --follow never ends", hint="pick one")
    store = get_store(ctx)
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise UserError(f"no run {run_id}", hint="farm runs list")
        newest = select(ConsoleLine).where(ConsoleLine.run_id == run_id)
        rows = list(
            reversed(session.scalars(newest.order_by(ConsoleLine.id.desc()).limit(lines)).all())
        )
        last = rows[-1].id if rows else 0
        crashes = session.scalars(select(Crash).where(Crash.run_id == run_id)).all()
        if as_json:
            emit_json(
                {
                    "run": run.id,
                    "host": run.host,
                    "state": str(run.state),
                    "verdict": str(run.verdict) if run.verdict else None,
                    "reasons": list(run.reasons),
                    "crashes": [
                        {"title": c.title, "kind": c.kind, "uptime_seconds": c.uptime_seconds}
                        for c in crashes
                    ],
                    "lines": [row.line for row in rows],
                }
            )
            return
        for row in rows:
            click.echo(printable(row.line))
        click.echo(f"# run {run_id} on {run.host}: {run.state}", err=True)
        for crash in crashes:
            click.echo(printable(f"# crash: {crash.title}"), err=True)
        if run.verdict:
            reasons = "; ".join(run.reasons) or "no findings"
            click.echo(printable(f"# verdict {run.verdict}: {reasons}"), err=True)
    while follow:
        time.sleep(1)
        with store.session() as session:
            rows = list(
                session.scalars(newest.where(ConsoleLine.id > last).order_by(ConsoleLine.id))
            )
        for row in rows:
            click.echo(printable(row.line))
            last = row.id


@click.command()
@click.argument("run_id", type=int)
@json_option
@click.pass_context
def cancel(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Cancel a run: queued at once, active at its next step (the load is stopped)."""
    from farm.scheduler.api import cancel_run

    result = cancel_run(get_store(ctx), run_id)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(
            f"run {run_id}: {result.state}"
            + (" (stops at its next step)" if not result.done else "")
        )
