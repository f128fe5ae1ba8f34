# SPDX-License-Identifier: Apache-2.0
"""farm up / farm down: start and stop what the configuration needs, supervised."""

from __future__ import annotations

import os
import sys
import time

import click
from sqlalchemy import select

from farm.cli.common import emit_json, get_config, get_store, json_option
from farm.config import FarmConfig, redact
from farm.supervisor import (
    UpState,
    launch,
    read_state,
    services_for,
    shut_down,
    start_ticks,
    supervise,
)


@click.command()
@click.option("--status", "show_status", is_flag=True, help="Show what runs; exit 3 if not up.")
@click.option(
    "--foreground",
    is_flag=True,
    help="Run the supervisor in this process (as a systemd unit's ExecStart would).",
)
@json_option
@click.pass_context
def up(ctx: click.Context, show_status: bool, foreground: bool, as_json: bool) -> None:
    """Start the services the configuration needs and keep them running.

    \b
    A private redis-server (unless broker_url is configured), a worker serving every
    configured host, beat, the exporter, `farm netconsole` when a host's console is
    netconsole, and `farm api` when an API token exists. They run under a supervisor
    that outlives this terminal and starts again whatever exits (back-off 1 s to
    60 s); logs are in <data_dir>/logs/. `farm down` stops them.
    """
    config = get_config(ctx)
    running = read_state(config.data_dir)
    if show_status:
        _show(config, running, as_json)
        if running is None:
            sys.exit(3)
        return
    if foreground:
        supervise(config, services_for(config, api=_api_configured(config)))
        return
    if running is None:
        services_for(config, api=_api_configured(config))  # a broken token fails here
        running = launch(config)
        verb = "started"
    else:
        verb = "was already up"
    if as_json:
        emit_json(_json(running))
        return
    click.echo(f"farm {verb}: {_summary(running)}")
    _show_services(running)
    click.echo(f"logs: {running.log_dir}; stop with `farm down`")


@click.command()
@json_option
@click.pass_context
def down(ctx: click.Context, as_json: bool) -> None:
    """Stop what `farm up` started, and the QEMU VMs started while it was up on hosts
    with no run in flight.

    A VM soaking a run keeps running, so the run goes on after the next `farm up`;
    `farm cancel RUN` first to stop it too.
    """
    config = get_config(ctx)
    stopped = shut_down(config.data_dir)
    vms, kept = _stop_idle_vms(ctx, config, stopped) if stopped is not None else ([], {})
    if as_json:
        emit_json(
            {
                "stopped": [] if stopped is None else [s.name for s in stopped.services],
                "vms_stopped": vms,
                "vms_kept": kept,
            }
        )
        return
    if stopped is None:
        click.echo(f"farm is not up for {config.data_dir}: nothing to stop")
        return
    click.echo(f"stopped: {', '.join(s.name for s in stopped.services)}")
    if vms:
        click.echo(f"stopped the QEMU VMs of {', '.join(vms)}")
    for host, run in kept.items():
        click.echo(f"kept the VM of {host}: run {run} soaks on it (farm cancel {run})")


def _api_configured(config: FarmConfig) -> bool:
    """A token in the environment or in the token file: then `farm api` is wanted (and
    a token file that is unsafe or too short is an error now, not a crash loop)."""
    from farm.api.auth import TOKEN_ENV, load_token, token_file

    if not os.environ.get(TOKEN_ENV) and not token_file(config).exists():
        return False
    load_token(config)
    return True


def _stop_idle_vms(
    ctx: click.Context, config: FarmConfig, up: UpState
) -> tuple[list[str], dict[str, int]]:
    """Stop the QEMU VMs that started while farm was up (its workers started them) on
    hosts without a run in flight; (stopped, {host: run kept})."""
    from farm.hosts.qemu import QemuVm
    from farm.store.runs import TERMINAL, Run

    ours = {}  # host name -> its VM, started while farm was up
    for host in (h for h in config.hosts if h.kind == "qemu"):
        vm = QemuVm(host, config.data_dir)
        pid = vm.pid()
        if pid is not None and (start_ticks(pid) or 0) >= up.supervisor_ticks:
            ours[host.name] = vm
    if not ours:
        return [], {}
    with get_store(ctx).session() as session:
        rows = session.execute(select(Run.host, Run.id).where(Run.state.not_in(TERMINAL)))
        busy = {host: run_id for host, run_id in rows if host in ours}
    for name, vm in ours.items():
        if name not in busy:
            vm.stop()
    return [name for name in ours if name not in busy], busy


def _json(state: UpState) -> dict[str, object]:
    return {**state.model_dump(mode="json"), "broker_url": redact(state.broker_url)}


def _summary(state: UpState) -> str:
    broker = "private Redis" if state.private_broker else "configured broker"
    return (
        f"supervisor pid {state.supervisor_pid}, {broker} {redact(state.broker_url)}, "
        f"config {state.config or 'embedded default'}"
    )


def _show(config: FarmConfig, state: UpState | None, as_json: bool) -> None:
    if as_json:
        emit_json({"up": False} if state is None else {"up": True, **_json(state)})
    elif state is None:
        click.echo(f"farm is not up for {config.data_dir}: start it with `farm up`")
    else:
        click.echo(f"farm is up: {_summary(state)}")
        _show_services(state)


def _show_services(state: UpState) -> None:
    now = time.time()
    for child in state.services:
        if child.pid is not None:
            how = f"pid {child.pid:<7} up {now - (child.started_at or now):.0f} s"
        else:
            wait = max(0.0, (child.next_start_at or now) - now)
            how = f"exited ({child.last_exit}), starts again in {wait:.0f} s"
        restarts = f", restarts: {child.restarts}" if child.restarts else ""
        click.echo(f"  {child.name:<11} {how}{restarts}  log {state.log_dir}/{child.name}.log")


def warn_unless_running(config: FarmConfig) -> None:
    """What `farm submit` says when no farm would run what it queued."""
    from farm.scheduler.app import why_not_running

    problem = why_not_running(config)
    if problem is not None:
        click.echo(
            f"farm: warning: no farm is running for this configuration: {problem}; the runs "
            "wait in the database until one runs",
            err=True,
        )
        click.echo("  hint: farm up", err=True)
