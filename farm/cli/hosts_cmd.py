# SPDX-License-Identifier: Apache-2.0
"""farm hosts: list, check, start, stop and trust the test machines of the inventory;
their health (maintenance, retire, history, alerts) and manual power (power-done)."""

from __future__ import annotations

import getpass
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import click

from farm.cli.common import emit_json, get_config, get_store, json_option
from farm.config import FarmConfig
from farm.errors import FarmError, UserError
from farm.hosts import KernelImage, get_host, keys
from farm.hosts.base import HostHealth
from farm.hosts.power import acknowledge_manual
from farm.hosts.remote import RemoteHost
from farm.scheduler import health
from farm.store.hosts import Health


@click.group()
def hosts() -> None:
    """Test machines: bare metal over SSH or QEMU virtual hosts."""


def _remote(config: FarmConfig, name: str) -> RemoteHost:
    host = get_host(config, name)
    assert isinstance(host, RemoteHost)  # every registered kind is reached over SSH
    return host


def _address(host: RemoteHost) -> str:
    try:
        endpoint = host.endpoint()
    except FarmError:
        return "-"  # a QEMU host that never started has no port yet
    return f"{endpoint.user}@{endpoint.address}:{endpoint.port}"


@hosts.command("list")
@json_option
@click.pass_context
def list_hosts(ctx: click.Context, as_json: bool) -> None:
    """Show the inventory and which hosts are powered on (does not connect)."""
    config = get_config(ctx)
    with get_store(ctx).session() as session:
        changes = {h.name: health.latest(session, h.name) for h in config.hosts}
        health_rows = {
            name: {"health": str(c.state), "health_reason": c.reason} if c else
            {"health": str(Health.UNKNOWN), "health_reason": "never checked"}
            for name, c in changes.items()
        }  # fmt: skip
    rows = []
    for entry in config.hosts:
        host = _remote(config, entry.name)
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "address": _address(host),
                "boot": entry.boot,
                "power": entry.power.kind,
                "power_state": host.power.state(),
                "console": entry.console.kind,
                "tags": entry.tags,
                **health_rows[entry.name],
            }
        )
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        tags = ",".join(row["tags"]) or "-"  # type: ignore[arg-type]
        click.echo(
            f"{row['name']:<14} {row['health']:<11} {row['kind']:<5} {row['address']:<24} "
            f"boot={row['boot']} power={row['power']}:{row['power_state']} "
            f"console={row['console']} tags={tags}"
        )


def _check(config: FarmConfig, name: str) -> HostHealth:
    try:
        return get_host(config, name).check()
    except FarmError as exc:
        return HostHealth(name=name, ok=False, problems=[str(exc)])


@hosts.command("check")
@click.argument("names", nargs=-1)
@json_option
@click.pass_context
def check(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Connect to hosts (all by default) and report their health; exit 3 if any is not OK."""
    config = get_config(ctx)
    selected = [config.host(name).name for name in names] or [h.name for h in config.hosts]
    if not as_json:
        click.echo(f"checking {', '.join(selected)} ...", err=True)
    with ThreadPoolExecutor(max_workers=max(1, len(selected))) as pool:
        results = list(pool.map(lambda name: _check(config, name), selected))
    if as_json:
        emit_json([asdict(health) for health in results])
    else:
        for health in results:
            _show(health)
    if not all(health.ok for health in results):
        sys.exit(3)


def _show(health: HostHealth) -> None:
    if health.ok:
        free = (health.free_disk_bytes or 0) // (1024 * 1024)
        click.echo(
            f"{health.name}: OK  kernel {health.kernel_release}  boot_id {health.boot_id}  "
            f"up {health.uptime_seconds:.0f}s  free {free} MiB  pstore {health.pstore}"
        )
        return
    click.echo(f"{health.name}: NOT OK")
    for problem in health.problems:
        click.echo("  - " + problem.replace("\n", "\n    "))


@hosts.command("start")
@click.argument("name")
@click.option(
    "--kernel",
    "kernel_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="bzImage to boot (default: power on with the last kernel).",
)
@click.option("--cmdline", default="", help="Extra kernel command line arguments.")
@json_option
@click.pass_context
def start(
    ctx: click.Context, name: str, kernel_path: Path | None, cmdline: str, as_json: bool
) -> None:
    """Boot a host (a QEMU VM is started) and wait until it answers SSH."""
    config = get_config(ctx)
    host = _remote(config, name)
    if kernel_path is not None:
        kernel = KernelImage.from_bzimage(kernel_path)
        click.echo(f"{name}: booting {kernel.release} ({kernel.build_id}) ...", err=True)
        booted = host.boot(kernel, cmdline=cmdline)
    else:
        click.echo(f"{name}: powering on ...", err=True)
        host.power.on()
        booted = host.wait_ready()
    if as_json:
        emit_json({"name": name, **asdict(booted)})
        return
    endpoint = host.endpoint()
    ssh = shlex.join(
        [
            "ssh", "-i", str(endpoint.key), "-o", f"UserKnownHostsFile={endpoint.known_hosts}",
            "-p", str(endpoint.port), f"{endpoint.user}@{endpoint.address}",
        ]
    )  # fmt: skip
    click.echo(f"{name}: up, kernel {booted.release}, boot_id {booted.boot_id}\n  {ssh}")


@hosts.command("stop")
@click.argument("name")
@click.pass_context
def stop(ctx: click.Context, name: str) -> None:
    """Power a host off (a QEMU VM's process is terminated)."""
    host = _remote(get_config(ctx), name)
    host.power.off()
    click.echo(f"{name}: off")


@hosts.command("trust")
@click.argument("name")
@click.option("--fingerprint", help="The SHA256:... fingerprint you verified on the host.")
@click.pass_context
def trust(ctx: click.Context, name: str, fingerprint: str | None) -> None:
    """Record a bare-metal host's SSH key after you verified its fingerprint."""
    from farm.hosts.ssh import fetch_host_key

    config = get_config(ctx)
    host = _remote(config, name)
    if host.config.kind == "qemu":
        raise UserError(
            f"{name} is a QEMU host: farm creates and records its key when it starts the VM",
            hint=f"farm hosts stop {name} && farm hosts start {name}",
        )
    endpoint = host.endpoint()
    offered = fetch_host_key(endpoint)
    actual = keys.fingerprint(offered)
    if fingerprint is None:
        raise UserError(
            f"{endpoint.label} offers key {actual}; compare it with the host's own "
            "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`",
            hint=f"farm hosts trust {name} --fingerprint {actual}",
        )
    if fingerprint != actual:
        raise UserError(
            f"{endpoint.label} offers key {actual}, not the {fingerprint} you verified; "
            "nothing recorded"
        )
    pattern = keys.host_pattern(endpoint.address, endpoint.port)
    keys.record_host_key(endpoint.known_hosts, pattern, offered, f"farm-trust:{name}")
    click.echo(f"{name}: recorded {actual} for {pattern} in {endpoint.known_hosts}")


def _set(ctx: click.Context, name: str, state: Health, reason: str, as_json: bool) -> None:
    """Record a human's health change; leaving maintenance queues a health check."""
    config = get_config(ctx)
    with get_store(ctx).session() as session:
        change = health.set_by_human(
            session, config, name, state, reason=reason, by=getpass.getuser()
        )
    if change.health_check_run is not None:
        from farm.scheduler.app import get_app, schedule

        get_app(config)
        schedule(change.health_check_run, name, 0, 0.0)  # broker down: the reconciler sends it
    result = {"name": name, "previous": str(change.previous), "health": str(state),
              "reason": change.reason, "health_check_run": change.health_check_run,
              "alerts_acknowledged": change.alerts_acknowledged}  # fmt: skip
    if as_json:
        emit_json(result)
        return
    click.echo(f"{name}: {change.previous} -> {state} ({change.reason})")


@hosts.command("maintenance")
@click.argument("name")
@click.argument("mode", type=click.Choice(["on", "off"]))
@click.option("--reason", default="", help="Why, for `farm hosts history`.")
@json_option
@click.pass_context
def maintenance(ctx: click.Context, name: str, mode: str, reason: str, as_json: bool) -> None:
    """Take a host out of service (on), or put it back (off: UNKNOWN, and a health check
    runs before other work when health checks are on for the host)."""
    if mode == "on":
        _set(ctx, name, Health.MAINTENANCE, reason or "maintenance on", as_json)
    else:
        _set(ctx, name, Health.UNKNOWN, reason or "maintenance off", as_json)


@hosts.command("retire")
@click.argument("name")
@click.option("--reason", default="", help="Why, for `farm hosts history`.")
@json_option
@click.pass_context
def retire(ctx: click.Context, name: str, reason: str, as_json: bool) -> None:
    """Take a host out for good (`farm hosts maintenance NAME off` brings it back)."""
    _set(ctx, name, Health.RETIRED, reason or "retired", as_json)


@hosts.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="Newest changes to show.")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """Health changes of a host, newest first: who, why, when."""
    get_config(ctx).host(name)
    with get_store(ctx).session() as session:
        rows = [
            {"at": c.at.isoformat(), "health": str(c.state), "previous": str(c.previous),
             "by": c.by, "reason": c.reason, "run": c.run_id}
            for c in health.history(session, name, limit)
        ]  # fmt: skip
    if as_json:
        emit_json(rows)
        return
    for row in rows or [{"at": "-", "health": "UNKNOWN", "by": "-", "reason": "never checked"}]:
        click.echo(f"{row['at']}  {row['health']:<11} by {row['by']}: {row['reason']}")


@hosts.command("alerts")
@json_option
@click.pass_context
def alerts(ctx: click.Context, as_json: bool) -> None:
    """Open alerts about hosts: failed health checks, manual power requests."""
    with get_store(ctx).session() as session:
        rows = [
            {"id": a.id, "host": a.host, "kind": a.kind, "message": a.message,
             "run": a.run_id, "raised_at": a.raised_at.isoformat()}
            for a in health.open_alerts(session)
        ]  # fmt: skip
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['raised_at']}  {row['host']} {row['kind']}: {row['message']}")
    if not rows:
        click.echo("no open alerts")


@hosts.command("power-done")
@click.argument("name")
@json_option
@click.pass_context
def power_done(ctx: click.Context, name: str, as_json: bool) -> None:
    """Tell farm you switched a manual-power host as it asked."""
    config = get_config(ctx)
    action = acknowledge_manual(config.host(name), config.data_dir)
    if action is None:
        raise UserError(f"no power request is waiting for {name}", hint="farm hosts alerts")
    with get_store(ctx).session() as session:
        health.ack_alerts(session, name, by=getpass.getuser(), kind="manual-power")
    if as_json:
        emit_json({"name": name, "action": action})
        return
    click.echo(f"{name}: switched {action}, farm goes on")
