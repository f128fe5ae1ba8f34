# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the command modules: config, store and output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from farm.config import FarmConfig, load_config
from farm.store import Store

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def get_config(ctx: click.Context) -> FarmConfig:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    if "config" not in root.obj:
        root.obj["config"] = load_config(root.obj.get("config_path"))
    config: FarmConfig = root.obj["config"]
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


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
