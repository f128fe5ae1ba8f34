# SPDX-License-Identifier: Apache-2.0
"""The ``farm`` command.

Subcommands are loaded lazily by name, so ``farm --help`` imports neither Celery nor
Fabric, and each pipeline stage owns its own command module under farm/cli/.
Exit codes: 0 pass, 1 usage or configuration error, 2 kernel failure found,
3 infrastructure failure, 4 farm bug. A bug (an exception that is no FarmError) is
one line on stderr; its traceback goes to a private file for the bug report.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import click

from farm.errors import FarmError

# name -> "module:attribute"; one line per command keeps stages out of each other's way.
COMMANDS: dict[str, str] = {
    "api": "farm.cli.api_cmd:api",
    "beat": "farm.cli.scheduler_cmd:beat",
    "bisect": "farm.cli.bisect_cmd:bisect",
    "build": "farm.cli.build_cmd:build",
    "cancel": "farm.cli.scheduler_cmd:cancel",
    "config": "farm.cli.config_cmd:config",
    "crash": "farm.cli.crash_cmd:crash",
    "down": "farm.cli.up_cmd:down",
    "exporter": "farm.cli.metrics_cmd:exporter",
    "hosts": "farm.cli.hosts_cmd:hosts",
    "join-token": "farm.cli.join_cmd:join_token",
    "logs": "farm.cli.scheduler_cmd:logs",
    "netconsole": "farm.cli.netconsole_cmd:netconsole",
    "report": "farm.cli.report_cmd:report",
    "runs": "farm.cli.runs_cmd:runs",
    "series": "farm.cli.series_cmd:series",
    "status": "farm.cli.scheduler_cmd:status",
    "submit": "farm.cli.series_cmd:submit",
    "up": "farm.cli.up_cmd:up",
    "worker": "farm.cli.scheduler_cmd:worker",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="FARM_CONFIG",
    help="farm.toml to use (default: $FARM_CONFIG, then ~/.config/farm/farm.toml).",
)
@click.version_option(package_name="farm")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """farm: soak-test Linux kernel patch series, find the patch that broke it."""
    ctx.ensure_object(dict)["config_path"] = config_path


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    state: dict[str, Any] = {}  # ctx.obj: the config path, and the config once read
    try:
        return cli.main(args=argv, prog_name="farm", standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        _fail(args, "aborted", None, 130)
    except click.ClickException as exc:
        if "--json" not in args:
            exc.show()
            sys.exit(1)
        _fail(args, exc.format_message(), "farm COMMAND --help", 1)
    except FarmError as exc:
        _fail(args, f"error: {exc.message}", exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        _fail(args, "interrupted", None, 130)
    except Exception as exc:
        where = _save_traceback(state, args)
        message = " ".join(str(exc).split())[:300]
        _fail(args, f"internal error: {type(exc).__name__}: {message}; {where}", None, 4)


def _fail(args: list[str], message: str, hint: str | None, code: int) -> None:
    """The error on stderr and the exit: ``farm: MESSAGE`` (and its hint) for people;
    with --json, one object ``{"error", "hint", "exit"}`` for scripts."""
    if "--json" in args:
        error = message.removeprefix("error: ")
        click.echo(json.dumps({"error": error, "hint": hint, "exit": code}), err=True)
    else:
        click.echo(f"farm: {message}" + (f"\n  hint: {hint}" if hint else ""), err=True)
    sys.exit(code)


def _save_traceback(state: dict[str, Any], argv: list[str]) -> str:
    """Write the current exception's traceback to a 0600 file; where it went, in words."""
    text = f"farm {shlex.join(argv)}\n{traceback.format_exc()}"
    name = f"traceback-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
    for directory in _traceback_dirs(state):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w") as out:
            out.write(text)
        return f"traceback in {directory / name}"
    try:
        fd, path = tempfile.mkstemp(prefix="farm-traceback-", suffix=".txt")  # 0600
    except OSError as exc:
        sys.stderr.write(text)
        return f"traceback above (not saved: {exc.strerror})"
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return f"traceback in {path}"


def _traceback_dirs(state: dict[str, Any]) -> list[Path]:
    """The data directory when the configuration can be read (it may be what is broken),
    then $XDG_STATE_HOME/farm."""
    from farm.config import load_config

    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    found = [state_home / "farm" / "tracebacks"]
    config = state.get("config")
    if config is None:
        try:
            config = load_config(state.get("config_path"))
        except Exception:  # any failure here only means: no data dir
            return found
    return [config.data_dir / "tracebacks", *found]
