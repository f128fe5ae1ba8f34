# SPDX-License-Identifier: Apache-2.0
"""farm submit, farm series list|show: patch series in, and what the store knows of them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from farm.cli.common import emit_json, get_config, get_store, json_option
from farm.cli.up_cmd import warn_unless_running
from farm.config import FarmConfig
from farm.errors import UserError
from farm.intake.series import few_numbers, parse_selection
from farm.loads import get_load
from farm.scheduler.submit import IntakeResult, intake, submit_series
from farm.store.series import Application, Series
from farm.units import format_duration, parse_duration


@click.command()
@click.argument("source", metavar="SERIES")
@click.option("--upto", type=click.IntRange(min=1), help="Apply patches 1..N only.")
@click.option("--patches", "selection", metavar="LIST", help="Apply these patches, e.g. 1-7,9.")
@click.option("--base", metavar="REF", help="Commit to apply on (default: base-commit:).")
@click.option(
    "--guess-base",
    "guess",
    is_flag=True,
    help="Without base-commit: or --base, find the base in the tree from the diffs' blob ids.",
)
@click.option("--tree", type=click.Path(path_type=Path, file_okay=False), help="Kernel git tree.")
@click.option("--hosts", metavar="A,B", help="Hosts to soak on (default: all).")
@click.option("--load", metavar="NAME", help="Load to run (default: from the config).")
@click.option("--soak", metavar="DURATION", help="Soak length, e.g. 12h or 1h30m.")
@click.option("--dry-run", is_flag=True, help="Only read the series: no git, no database.")
@click.option("--allow-incomplete", is_flag=True, help="Go ahead despite gaps or duplicates.")
@json_option
@click.pass_context
def submit(
    ctx: click.Context,
    source: str,
    upto: int | None,
    selection: str | None,
    base: str | None,
    guess: bool,
    tree: Path | None,
    hosts: str | None,
    load: str | None,
    soak: str | None,
    dry_run: bool,
    allow_incomplete: bool,
    as_json: bool,
) -> None:
    """Read a patch series and apply it.

    SERIES is an mbox, a maildir, a directory of format-patch files, b4's .mbx (its
    .cover beside it is read too), - for standard input, a Message-ID or a lore URL
    (the thread is fetched from [intake] lore_url, as b4 am does).
    """
    config = get_config(ctx)
    plan = _plan(config, hosts, load, soak)
    chosen: dict[str, Any] = {
        "upto": upto,
        "patches": parse_selection(selection, config.intake.max_patches) if selection else None,
        "base": base,
        "guess": guess,
        "tree": tree,
        "allow_incomplete": allow_incomplete,
        "stdin": _read_stdin,
    }
    if dry_run:
        result = intake(config, None, source, dry_run=True, progress=_progress, **chosen)
        cost = _cost(config, result, plan)
        if as_json:
            emit_json({**result.to_json(), "plan": cost})
            return
        _print_result(result)
        click.echo(f"next: {_next_step(result, plan)}")
        _print_cost(cost)
        return
    submitted = submit_series(
        config,
        get_store(ctx),
        source,
        **plan,
        progress=_progress,
        **chosen,
    )
    result, runs = submitted.intake, submitted.runs
    warn_unless_running(config)
    if as_json:
        emit_json({**result.to_json(), "next": plan, "runs": runs})
        return
    _print_result(result)
    click.echo(f"next: {_next_step(result, plan)}")
    click.echo(f"queued runs {', '.join(map(str, runs))}: watch them with `farm status`")


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def _progress(message: str) -> None:
    """Progress goes to standard error, so --json output stays one document."""
    click.echo(f"farm: {message}", err=True)


def _plan(
    config: FarmConfig, hosts: str | None, load: str | None, soak: str | None
) -> dict[str, Any]:
    """Check the soak options before any work, so a typo costs nothing."""
    names = [h.strip() for h in hosts.split(",") if h.strip()] if hosts else None
    chosen = [config.host(n).name for n in names] if names else [h.name for h in config.hosts]
    get_load(config, load or config.default_load)  # a UserError naming the known loads
    return {
        "hosts": chosen,
        "load": load or config.default_load,
        "soak_seconds": parse_duration(soak or config.default_soak),
    }


def _next_step(result: IntakeResult, plan: dict[str, Any]) -> str:
    soak = (
        f"boot it on {', '.join(plan['hosts'])} and soak with load {plan['load']} "
        f"for {format_duration(plan['soak_seconds'])}"
    )
    if result.dry_run:
        count = len(result.selected)
        return f"without --dry-run, farm applies {count} patches in a worktree, builds, {soak}"
    return f"build {result.branch} ({(result.head or '')[:12]}), {soak}"


def _cost(config: FarmConfig, result: IntakeResult, plan: dict[str, Any]) -> dict[str, Any]:
    """What submitting costs: the kernels to build, the runs per host and host-hours.
    Each host soaks the base (a baseline, unless a recent one exists) and the patched
    kernel for the same time, so a 12 h soak costs 24 h of each host."""
    soak = plan["soak_seconds"]
    per_host = [
        {"kind": "baseline", "kernel": "base", "soak_seconds": soak},
        {"kind": "patched", "kernel": f"+{result.selected[-1]}" if result.selected else "base",
         "soak_seconds": soak},
    ]  # fmt: skip
    hours = 2 * soak / 3600
    return {
        "kernels": [
            {"kernel": "base", "commit": result.base or result.series.base_commit},
            {"kernel": per_host[1]["kernel"], "patches": result.selected},
        ],
        "hosts": plan["hosts"],
        "load": plan["load"],
        "runs_per_host": per_host,
        "baseline_reuse_hours": config.scheduler.baseline_max_age_hours,
        "host_hours_per_host": hours,
        "host_hours": hours * len(plan["hosts"]),
    }


def _print_cost(cost: dict[str, Any]) -> None:
    base, patched = cost["kernels"]
    soak = format_duration(cost["runs_per_host"][0]["soak_seconds"])
    click.echo(
        f"plan: build 2 kernels: the base ({(base['commit'] or 'tree base')[:12]}) and "
        f"{patched['kernel']} (patches {few_numbers(patched['patches'])})"
    )
    click.echo(
        f"  on each of {', '.join(cost['hosts'])}: a baseline soak of the base (skipped if "
        f"one younger than {cost['baseline_reuse_hours']:g} h exists) and a soak of "
        f"{patched['kernel']}, {soak} each, load {cost['load']}"
    )
    click.echo(
        f"  cost: {cost['host_hours_per_host']:g} host-hours per host (a {soak} soak with its "
        f"baseline), {cost['host_hours']:g} host-hours in all"
    )


def _print_result(result: IntakeResult) -> None:
    series = result.series
    cover = f", cover {series.cover.message_id}" if series.cover else ""
    click.echo(f"series {series.title!r} v{series.version}, {series.total} patches{cover}")
    if series.base_commit:
        click.echo(f"base-commit: {series.base_commit}")
    width = len(str(series.total))
    for patch in series.patches:
        mark = "+" if patch.index in result.selected else " "
        sha = result.commits.get(patch.index, "")[:12]
        click.echo(f" {mark} {patch.index:0{width}d}/{series.total} {sha:12} {patch.subject}")
    if series.missing:
        click.echo(f"missing: {few_numbers(series.missing)}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not result.dry_run:
        verb = "reused" if result.reused else "applied"
        click.echo(
            f"{verb} {len(result.selected)} patches on {(result.base or '')[:12]} as series "
            f"{result.series_id}, branch {result.branch} in {result.worktree}"
        )


@click.group()
def series() -> None:
    """Patch series farm has read."""


@series.command("list")
@json_option
@click.pass_context
def list_series(ctx: click.Context, as_json: bool) -> None:
    """Every series, newest first."""
    with get_store(ctx).session() as session:
        applied = (
            select(Application.series_id, func.count().label("n"))
            .group_by(Application.series_id)
            .subquery()
        )
        rows = session.execute(
            select(Series, func.coalesce(applied.c.n, 0))
            .outerjoin(applied, applied.c.series_id == Series.id)
            .order_by(Series.id.desc())
        ).all()
        items = [{**_series_json(s), "applications": n} for s, n in rows]
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("no series yet; try: farm submit series.mbox")
    for item in items:
        click.echo(
            f"{item['id']:4d}  v{item['version']}  {item['total']:3d} patches  "
            f"{item['applications']} applied  {item['title']}"
        )


@series.command("show")
@click.argument("series_id", metavar="ID", type=int)
@json_option
@click.pass_context
def show_series(ctx: click.Context, series_id: int, as_json: bool) -> None:
    """One series: its patches, their mail headers and where they were applied."""
    with get_store(ctx).session() as session:
        row = session.get(Series, series_id)
        if row is None:
            raise UserError(f"no series with id {series_id}", hint="farm series list")
        data = {
            **_series_json(row),
            "patches": [
                {
                    "index": p.index,
                    "subject": p.subject,
                    "author": p.author,
                    "date": p.date,
                    "message_id": p.message_id,
                    "in_reply_to": p.in_reply_to,
                    "patch_id": p.patch_id,
                    "files": p.files,
                    "trailers": p.trailers,
                }
                for p in row.patches
            ],
            "applications": [
                {
                    "id": a.id,
                    "tree": a.tree,
                    "base_commit": a.base_commit,
                    "branch": a.branch,
                    "worktree": a.worktree,
                    "commits": {str(c.index): c.sha for c in a.commits},
                }
                for a in row.applications
            ],
        }
    if as_json:
        emit_json(data)
        return
    _print_series(data)


def _series_json(row: Series) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "version": row.version,
        "total": row.total,
        "base_commit": row.base_commit,
        "cover_message_id": row.cover_message_id,
        "change_id": row.change_id,
        "source": row.source,
        "created_at": row.created_at.isoformat(),
    }


def _print_series(data: dict[str, Any]) -> None:
    head = f"series {data['id']}: {data['title']!r} v{data['version']}"
    click.echo(f"{head}, {data['total']} patches")
    click.echo(f"  source: {data['source']}")
    for key in ("base_commit", "cover_message_id", "change_id"):
        if data[key]:
            click.echo(f"  {key.replace('_', '-')}: {data[key]}")
    for patch in data["patches"]:
        click.echo(f"  {patch['index']:3d} {patch['subject']}")
        click.echo(f"      {patch['author']}  {patch['message_id'] or '(no Message-ID)'}")
        for trailer in patch["trailers"]:
            click.echo(f"      {trailer['name']}: {trailer['value']}")
    for app in data["applications"]:
        click.echo(f"  application {app['id']}: {app['branch']} on {app['base_commit'][:12]}")
        click.echo(f"      tree {app['tree']}, worktree {app['worktree']}")
        for index, sha in app["commits"].items():
            click.echo(f"      {int(index):3d} {sha}")
