# SPDX-License-Identifier: Apache-2.0
"""farm exporter: Prometheus metrics read from the store at scrape time."""

from __future__ import annotations

import click

from farm.cli.common import get_config, get_store


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=9478, show_default=True)
@click.pass_context
def exporter(ctx: click.Context, address: str, port: int) -> None:
    """Serve /metrics (hosts, vmstat/meminfo, runs, crashes, builds, bisections)."""
    from farm.metrics.exporter import serve

    config = get_config(ctx)
    click.echo(f"farm exporter: http://{address}:{port}/metrics", err=True)
    serve(config, get_store(ctx), address=address, port=port)
