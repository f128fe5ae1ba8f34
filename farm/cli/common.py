# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the command modules: config, store and output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from farm.config import FarmConfig, load_config
from farm.errors import UserError
from farm.store import Store

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


class AliasedOption(click.Option):
    """An option whose first spelling is the one --help shows; the older spellings
    after it still parse, so scripts written for them keep working."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        spellings, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = spellings


log_level_option = click.option(
    "--log-level",
    "--loglevel",
    "log_level",
    cls=AliasedOption,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    help="How much the log says.",
)


def bind_option(*old: str, default: str | None, help: str) -> Callable[[F], F]:
    """``--bind ADDRESS``: the address a server listens on (``old``: former spellings)."""
    option = click.option(
        "--bind", *old, "bind", cls=AliasedOption, default=default, show_default=True, help=help
    )
    return option


def get_config(ctx: click.Context) -> FarmConfig:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    if "config" not in root.obj:
        root.obj["config"] = _with_running_broker(load_config(root.obj.get("config_path")))
    config: FarmConfig = root.obj["config"]
    return config


def _with_running_broker(config: FarmConfig) -> FarmConfig:
    """With no broker configured, the private one of `farm up` when it runs."""
    from farm.supervisor import broker_configured, read_state

    if not broker_configured(config):
        running = read_state(config.data_dir)
        if running is not None and running.private_broker:
            config.broker_url = running.broker_url
    return config


def get_store(ctx: click.Context) -> Store:
    root = ctx.find_root()
    if "store" not in (root.obj or {}):
        store = Store(get_config(ctx).db_url)
        root.obj["store"] = store
        root.call_on_close(store.dispose)
    result: Store = root.obj["store"]
    return result


# C0 controls but tab and newline, DEL and C1: ESC starts sequences that retitle,
# clear or reprogram a terminal, and 0x9b is CSI on its own.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from a console or a crash report as it may reach a terminal: control
    characters other than tab and newline are shown as ``\\xNN``, never obeyed.
    Storage keeps them; this is for output only."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def write_output(path: Path, data: str | bytes) -> None:
    """Write a file the user named (``-o FILE``); a path that cannot be written is the
    user's to fix, not a crash."""
    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    except OSError as exc:
        raise UserError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint=f"check that {path.parent} exists and is writable",
        ) from exc


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
