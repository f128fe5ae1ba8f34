# SPDX-License-Identifier: Apache-2.0
"""farm exporter: Prometheus metrics read from the store at scrape time."""

from __future__ import annotations

import click

from farm.cli.common import bind_option, get_config, get_store


@click.command()
@bind_option("--address", default="127.0.0.1", help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=9478, show_default=True)
@click.pass_context
def exporter(ctx: click.Context, bind: str, port: int) -> None:
    """Serve /metrics (hosts, vmstat/meminfo, runs, crashes, builds, bisections)."""
    from farm.metrics.exporter import serve

    config = get_config(ctx)
    click.echo(f"farm exporter: http://{bind}:{port}/metrics", err=True)
    serve(config, get_store(ctx), address=bind, port=port)
