# SPDX-License-Identifier: Apache-2.0
"""farm netconsole: receive the kernel messages of hosts without a serial port."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import click

from farm.cli.common import bind_option, emit_json, get_config, json_option
from farm.hosts.netconsole import DEFAULT_PORT, HostStats, Listener


@click.command()
@bind_option(
    default="127.0.0.1",
    help="Address to listen on. Loopback only hears this machine (and QEMU guests); "
    "to hear lab machines, give the controller's address on the lab network "
    "(or 0.0.0.0: then anyone who can reach the port can write to the hosts' logs).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="UDP port of hosts without their own [hosts.console] port.",
)
@json_option
@click.pass_context
def netconsole(ctx: click.Context, bind: str, port: int, as_json: bool) -> None:
    """Listen for netconsole datagrams until SIGTERM or Ctrl-C.

    Each datagram is appended to <data_dir>/hosts/<name>/netconsole.log of the
    inventory host (console kind "netconsole") whose address it comes from; datagrams
    from anywhere else are counted and dropped. The kernel side is the netconsole=
    argument farm puts on the test kernel's command line. With --json, a summary is
    printed at the end.
    """
    config = get_config(ctx)
    listener = Listener(config.hosts, config.data_dir, bind=bind, port=port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    names = sorted(sink.name for sink in listener.sinks.values())
    ports = ", ".join(str(p) for p in listener.ports)
    click.echo(f"netconsole: {bind} UDP {ports} for {', '.join(names)}", err=True)
    shown: dict[str, float] = {}

    def progress(name: str, stats: HostStats) -> None:
        if as_json or time.monotonic() - shown.get(name, 0.0) < 1.0:
            return
        shown[name] = time.monotonic()
        click.echo(f"{name}: {stats.datagrams} datagrams, {stats.bytes} bytes", err=True)

    try:
        listener.serve(stop, progress)
    finally:
        listener.close()
    summary: dict[str, Any] = {
        "hosts": {name: vars(stats) for name, stats in listener.stats.items()},
        "unknown_datagrams": listener.unknown,
    }
    if as_json:
        emit_json(summary)
        return
    for name, stats in listener.stats.items():
        click.echo(f"{name}: {stats.datagrams} datagrams, {stats.bytes} bytes")
    click.echo(f"dropped from unknown sources: {listener.unknown}")
