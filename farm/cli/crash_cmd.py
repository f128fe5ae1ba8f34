# SPDX-License-Identifier: Apache-2.0
"""farm crash: find and title the kernel crashes in console logs."""

from __future__ import annotations

from pathlib import Path

import click

from farm.cli.common import emit_json, json_option, printable
from farm.detect.crash import Crash, parse, unique
from farm.detect.symbolize import Symbolizer, symbolize_crash
from farm.errors import UserError


@click.group()
def crash() -> None:
    """Kernel crash reports in console text."""


@crash.command("parse")
@click.argument("logs", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@click.option("--system-map", type=click.Path(path_type=Path), help="Name raw addresses.")
@click.option("--vmlinux", type=click.Path(path_type=Path), help="Add file:line (debug info).")
@click.option("--report", "show_report", is_flag=True, help="Print each report's text too.")
@click.option("--oom", "report_oom", is_flag=True, help="Report OOM-killer invocations too.")
def parse_cmd(
    logs: tuple[Path, ...],
    as_json: bool,
    system_map: Path | None,
    vmlinux: Path | None,
    show_report: bool,
    report_oom: bool,
) -> None:
    """Find every crash in LOG... and print its syzbot-style title.

    Lists each title once, at its first occurrence, with a count. Exits 0 whether or
    not crashes are found; --json prints every occurrence as
    {"crashes": [{"title", "kind", "corrupted", "corrupted_reason", "frames", "start_line",
    "file"}]},
    start_line counting from 1.
    """
    if vmlinux is not None and system_map is None:
        raise UserError("--vmlinux needs --system-map too", hint="pass the build's System.map")
    symbolizer = Symbolizer(system_map, vmlinux) if system_map else None
    found: list[tuple[Path, Crash]] = []
    for log in logs:
        try:
            data = log.read_bytes()
        except OSError as exc:
            raise UserError(
                f"cannot read console log {log}: {exc.strerror}", hint="check the path"
            ) from exc
        for crash_ in parse(data, report_oom=report_oom):
            found.append((log, symbolize_crash(crash_, symbolizer) if symbolizer else crash_))
    if as_json:
        emit_json({"crashes": [{**c.to_json(), "file": str(log)} for log, c in found]})
        return
    for log in logs:
        crashes = unique(c for path, c in found if path == log)
        if not crashes:
            click.echo(f"{log}: no crash")
        for c, count in crashes:
            flag = f" [corrupted: {c.corrupted_reason}]" if c.corrupted else ""
            times = f" x{count}" if count > 1 else ""
            line = f"{log}:{c.start_line}: {c.title}{flag} ({c.kind}, {c.signature}){times}"
            click.echo(printable(line))
            if show_report:
                click.echo(printable(c.report))
