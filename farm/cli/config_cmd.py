# SPDX-License-Identifier: Apache-2.0
"""farm config: check and show the effective configuration."""

from __future__ import annotations

import click

from farm.cli.common import emit_json, get_config, json_option
from farm.config import KernelConfigSource, redact


@click.group()
def config() -> None:
    """Inspect farm's configuration."""


@config.command("check")
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate the configuration and print the effective values."""
    cfg = get_config(ctx)
    data = cfg.model_dump(mode="json")
    data["database_url"] = redact(cfg.db_url)
    data["broker_url"] = redact(cfg.broker_url)
    source = str(cfg.source) if cfg.source else "embedded default"
    if as_json:
        emit_json({"source": source, "config": data})
        return
    click.echo(f"# configuration OK, read from: {source}")
    click.echo(f"data_dir     = {cfg.data_dir}")
    click.echo(f"database_url = {data['database_url']}")
    click.echo(f"broker_url   = {data['broker_url']}")
    click.echo(f"loads_dir    = {cfg.loads_dir}")
    for tree in cfg.trees:
        click.echo(f"tree {tree.name}: {tree.path} (base {tree.base or 'from series'})")
    for host in cfg.hosts:
        tags = ",".join(host.tags) or "-"
        click.echo(
            f"host {host.name}: {host.kind} {host.user}@{host.address}:{host.port} "
            f"boot={host.boot} power={host.power.kind} console={host.console.kind} tags={tags} "
            f"kernel_config={_kernel_config(host.kernel_config)}"
        )


def _kernel_config(source: KernelConfigSource) -> str:
    return f"file:{source.path}" if source.kind == "file" else source.kind
