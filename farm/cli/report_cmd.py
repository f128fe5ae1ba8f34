# SPDX-License-Identifier: Apache-2.0
"""farm report: a bisection's report (FAIL) or a passed series' Tested-by (PASS), as an
email reply, an mbox for git send-email, Markdown or HTML; sent through [mail]."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import click

from farm.cli.common import get_config, get_store, write_output
from farm.errors import UserError

if TYPE_CHECKING:
    from farm.report.model import Identity


@click.command()
@click.argument("bisection_id", metavar="BISECT", type=int, required=False)
@click.option(
    "--tested",
    "series_id",
    type=int,
    metavar="SERIES",
    help="Instead of a bisection: the Tested-by reply of series SERIES, whose soak passed.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["email", "mbox", "markdown", "html"]),
    default="email",
    show_default=True,
    help="mbox: one-message mbox for `git send-email FILE`.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@click.option("--from", "sender", help="From: address (default: mail.from of farm.toml).")
@click.option("--send", is_flag=True, help="Send the email through mail.smtp of farm.toml.")
@click.option("--smtp", metavar="HOST[:PORT]", help="Send through this server (implies --send).")
@click.option("--dry-run", is_flag=True, help="With --send: only show who would get it.")
@click.pass_context
def report(
    ctx: click.Context,
    bisection_id: int | None,
    series_id: int | None,
    fmt: str,
    output: Path | None,
    sender: str | None,
    send: bool,
    smtp: str | None,
    dry_run: bool,
) -> None:
    """Write the report of bisection BISECT (default: the email replying to the culprit,
    with the crash, the kernel's facts, Reported-by/Closes tags, its config and repro.sh
    attached), or with --tested SERIES the Tested-by reply of a series that passed."""
    from farm.report import email, mailer

    if (bisection_id is None) == (series_id is None):
        raise UserError("give a bisection id or --tested SERIES (one of them)")
    send = send or smtp is not None
    if send and fmt not in ("email", "mbox"):
        raise UserError("--send sends the email only", hint="drop --format or --send")
    if series_id is not None and fmt not in ("email", "mbox"):
        raise UserError("a Tested-by report is an email", hint="--format email or mbox")
    if output is not None and not output.parent.is_dir():  # before sending anything
        raise UserError(
            f"cannot write {output}: No such file or directory",
            hint=f"check that {output.parent} exists and is writable",
        )
    config = get_config(ctx)
    identity = email.identity_of(config)
    if sender:
        identity.sender = sender
    mail = config.mail.model_copy(update={"smtp": smtp} if smtp else {})
    msg = _email(ctx, bisection_id, series_id, identity) if fmt in ("email", "mbox") else None
    if msg is not None and send:
        to = mailer.send(msg, mail, dry_run=dry_run)
        verb = "would send" if dry_run else "sent"
        click.echo(f"{verb} the report to {', '.join(to)} via {mail.smtp}", err=True)
    if msg is not None:
        data = mailer.as_mbox(msg) if fmt == "mbox" else msg.as_bytes()
    else:
        assert bisection_id is not None
        data = _page(ctx, bisection_id, fmt, output).encode()
    if output is None:
        if not send:
            click.echo(data, nl=False)
    else:
        write_output(output, data)
        click.echo(f"wrote {output}", err=True)


def _email(
    ctx: click.Context, bisection_id: int | None, series_id: int | None, identity: Identity
) -> EmailMessage:
    from farm.report import email
    from farm.scheduler.report_input import build_input, build_pass_input

    config = get_config(ctx)
    with get_store(ctx).session() as session:
        if series_id is not None:
            return email.build_pass_email(build_pass_input(session, series_id, config), identity)
        assert bisection_id is not None
        return email.build_email(build_input(session, bisection_id, config), identity)


def _page(ctx: click.Context, bisection_id: int, fmt: str, output: Path | None) -> str:
    from farm.report import render as pages
    from farm.scheduler.report_input import build_input

    with get_store(ctx).session() as session:
        ri = build_input(session, bisection_id)
    if fmt == "html":
        return pages.to_html(ri)
    prefix = f"{output.stem}-" if output else None
    if output is not None:
        for name, png in pages.images(ri).items():
            write_output(output.parent / f"{prefix}{name}", png)
    return pages.markdown(ri, prefix)
