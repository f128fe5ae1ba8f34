# SPDX-License-Identifier: Apache-2.0
"""farm join-token: what a worker on another machine needs, in one private file."""

from __future__ import annotations

from pathlib import Path

import click

from farm.cli.common import emit_json, get_config, json_option


@click.command("join-token")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write the token to (mode 600).",
)
@click.option(
    "--address",
    default=None,
    help="This controller's address on the workers' network, for a broker or database "
    "URL on loopback.",
)
@json_option
@click.pass_context
def join_token(ctx: click.Context, output: Path, address: str | None, as_json: bool) -> None:
    """Write a join token: the broker and database URLs, passwords included, that
    `farm worker --join FILE` on another machine serves the farm with."""
    from farm.scheduler.join import token_for, write_token

    token = token_for(get_config(ctx), address)
    write_token(token, output)
    if as_json:
        emit_json({"token_file": str(output), **token.describe()})
        return
    shown = token.describe()
    click.echo(
        f"join token written to {output} (mode 600): broker {shown['broker_url']}, "
        f"database {shown['database_url']}"
    )
    click.echo(f"on the worker machine: farm worker --join {output.name} --hosts HOST,...")
