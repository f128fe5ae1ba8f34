# SPDX-License-Identifier: Apache-2.0
"""Desktop notifications through notify-send, where the user has a session bus (a
desktop session; a worker run as a systemd --user unit has one too). Without one there
is nobody to show it to: skipped, not an error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from farm.config import FarmConfig
from farm.errors import InfraError
from farm.notify.event import Event


def session_bus() -> str | None:
    """The session bus address, from the environment or the standard per-user socket."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / "bus").is_socket():
        return f"unix:path={Path(runtime) / 'bus'}"
    return None


def send(event: Event, config: FarmConfig) -> bool:
    address = session_bus()
    if address is None:
        return False
    notify_send = shutil.which("notify-send")
    if notify_send is None:
        raise InfraError("notify-send is not installed", hint="apt install libnotify-bin")
    argv = [notify_send, "--app-name=farm", f"--urgency={'critical' if event.urgent else 'normal'}"]
    try:
        proc = subprocess.run(
            [*argv, "--", event.title, event.text],
            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=config.notify.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"notify-send did not finish in {config.notify.timeout:g}s") from exc
    if proc.returncode != 0:
        raise InfraError(f"notify-send failed: {proc.stderr.strip()[-300:]}")
    return True
