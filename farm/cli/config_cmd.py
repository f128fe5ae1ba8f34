# SPDX-License-Identifier: Apache-2.0
"""farm config: check and show the effective configuration."""

from __future__ import annotations

import click

from farm.cli.common import emit_json, get_config, json_option
from farm.config import redact


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
            f"boot={host.boot} power={host.power.kind} console={host.console.kind} tags={tags}"
        )
    mail = cfg.mail
    login = f" as {mail.user} (password in {mail.password_file})" if mail.user else ""
    where = f"{mail.smtp} {mail.security}{login}" if mail.smtp else "no smtp: reports as files"
    click.echo(f"mail: from {mail.sender}, {where}")
    n = cfg.notify
    events = ", ".join(
        f"{name}={'+'.join(getattr(n, name)) or 'off'}"
        for name in ("run_end", "culprit", "host_bad")
    )
    click.echo(f"notify: {events}")
