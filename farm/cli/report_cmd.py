# SPDX-License-Identifier: Apache-2.0
"""farm report: write a bisection's report as an email reply, Markdown or HTML."""

from __future__ import annotations

from pathlib import Path

import click

from farm.cli.common import get_store, write_output
from farm.errors import UserError


@click.command()
@click.argument("bisection_id", metavar="BISECT", type=int)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["email", "markdown", "html"]),
    default="email",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@click.option("--from", "sender", default="farm <farm@localhost>", show_default=True)
@click.option("--smtp", metavar="HOST[:PORT]", help="Send the email through this server.")
@click.option("--dry-run", is_flag=True, help="With --smtp: only show who would get it.")
@click.pass_context
def report(
    ctx: click.Context,
    bisection_id: int,
    fmt: str,
    output: Path | None,
    sender: str,
    smtp: str | None,
    dry_run: bool,
) -> None:
    """Write the report of bisection BISECT (default: the email replying to the culprit)."""
    from farm.report import email, render
    from farm.scheduler.report_input import build_input

    if smtp and fmt != "email":
        raise UserError("--smtp sends the email format only", hint="drop --format or --smtp")
    with get_store(ctx).session() as session:
        ri = build_input(session, bisection_id)
    if fmt == "email":
        msg = email.build_email(ri, sender)
        text = msg.as_string()
        if smtp:
            to = email.send(msg, smtp, dry_run=dry_run)
            verb = "would send" if dry_run else "sent"
            click.echo(f"{verb} the report to {', '.join(to)} via {smtp}", err=True)
    elif fmt == "html":
        text = render.to_html(ri)
    else:
        prefix = f"{output.stem}-" if output else None
        text = render.markdown(ri, prefix)
        if output is not None:
            for name, png in render.images(ri).items():
                write_output(output.parent / f"{prefix}{name}", png)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text)
        click.echo(f"wrote {output}", err=True)
