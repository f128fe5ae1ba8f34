# SPDX-License-Identifier: Apache-2.0
"""Laptop care: no soak on battery, and no suspend while one runs.

Configured per host (``[hosts.laptop] refuse_on_battery, inhibit_sleep``). Before a
soak's load starts, the host's /sys/class/power_supply is read over SSH: a battery
that is discharging while no mains (or USB-C) supply is online refuses the soak with
an InfraError. Then ``systemd-inhibit --what=sleep:idle:handle-lid-switch`` is held,
detached, for the soak plus a margin; its pid is in the run's directory on the host
and it is released when the run ends. If the controller dies instead, it expires by
itself. A host without a working systemd-inhibit gets a note in the run, not a refusal.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from farm.config import HostConfig
from farm.errors import InfraError
from farm.hosts.base import Transport

POWER_SUPPLY = "/sys/class/power_supply"
INHIBIT_WHAT = "sleep:idle:handle-lid-switch"
INHIBIT_MARGIN = 1800.0  # quiescing and collecting outlast the soak itself
_EXTERNAL = ("Mains", "USB")


@dataclass(frozen=True)
class Supply:
    """One entry of /sys/class/power_supply."""

    name: str
    type: str
    online: str
    status: str


def read_supplies(transport: Transport, root: str = POWER_SUPPLY) -> list[Supply]:
    """The host's power supplies (none on a desktop without ACPI batteries)."""
    script = (
        f"cd {shlex.quote(root)} 2>/dev/null || exit 0; for d in *; do "
        '[ -d "$d" ] || continue; printf "%s|%s|%s|%s\\n" "$d" '
        '"$(cat "$d/type" 2>/dev/null)" "$(cat "$d/online" 2>/dev/null)" '
        '"$(cat "$d/status" 2>/dev/null)"; done'
    )
    lines = transport.run(["sh", "-c", script]).stdout.splitlines()
    return [Supply(*line.split("|", 3)) for line in lines if line.count("|") == 3]


def on_battery(supplies: Sequence[Supply]) -> str | None:
    """Why the host runs on battery, or None when it is plugged in (or has none)."""
    if any(s.type in _EXTERNAL and s.online == "1" for s in supplies):
        return None
    draining = [s for s in supplies if s.type == "Battery" and s.status == "Discharging"]
    if not draining:
        return None
    unplugged = [s.name for s in supplies if s.type in _EXTERNAL] or ["no mains supply"]
    return f"{', '.join(s.name for s in draining)} discharging, {', '.join(unplugged)} offline"


def refuse_on_battery(transport: Transport, host: str, root: str = POWER_SUPPLY) -> None:
    why = on_battery(read_supplies(transport, root))
    if why is not None:
        raise InfraError(
            f"host {host} is on battery ({why}): a soak would drain it",
            hint=f"plug {host} in (the run retries), or [hosts.laptop] refuse_on_battery = false",
        )


def inhibit_argv(run_id: int, seconds: float) -> list[str]:
    """The inhibitor: blocks sleep, idle and the lid switch for ``seconds``."""
    return [
        "systemd-inhibit", f"--what={INHIBIT_WHAT}", "--mode=block", "--who=farm",
        f"--why=farm soak run {int(run_id)}", "sleep", str(int(seconds + INHIBIT_MARGIN)),
    ]  # fmt: skip


def inhibit(transport: Transport, *, host: str, run_dir: str, run_id: int, seconds: float) -> str:
    """Hold the inhibitor (once: a repeated step finds it); a note for the run when it
    cannot be held, else an empty string."""
    d = shlex.quote(run_dir)
    script = (
        f"mkdir -p {d} && cd {d} || exit 1\n"
        'if [ -f inhibit.pid ] && kill -0 "$(cat inhibit.pid)" 2>/dev/null; then\n'
        "  echo held; exit; fi\n"
        "command -v systemd-inhibit >/dev/null || { echo missing; exit; }\n"
        f"setsid {shlex.join(inhibit_argv(run_id, seconds))} < /dev/null > inhibit.log 2>&1 &\n"
        "echo $! > inhibit.pid; sleep 1\n"
        'if kill -0 "$(cat inhibit.pid)" 2>/dev/null; then echo held; else '
        'echo "failed $(head -c 300 inhibit.log | tr "\\n" " ")"; rm -f inhibit.pid; fi'
    )
    word, _, detail = transport.run(["sh", "-c", script]).stdout.strip().partition(" ")
    if word == "held":
        return ""
    if word == "missing":
        return f"{host} has no systemd-inhibit: sleep and the lid switch were not inhibited"
    return f"systemd-inhibit failed on {host} ({detail.strip()}): sleep was not inhibited"


def release(transport: Transport, run_dir: str) -> None:
    """Stop the inhibitor's whole session (idempotent)."""
    d = shlex.quote(run_dir)
    transport.run(
        f'if [ -f {d}/inhibit.pid ]; then kill -TERM -"$(cat {d}/inhibit.pid)" 2>/dev/null; '
        f"rm -f {d}/inhibit.pid; fi; true"
    )


def prepare(
    transport: Transport,
    config: HostConfig,
    *,
    run_dir: str,
    run_id: int,
    seconds: float,
    root: str = POWER_SUPPLY,
) -> list[str]:
    """Before a soak's load starts: refuse on battery, hold the inhibitor; the notes."""
    care = config.laptop
    if care is None:
        return []
    if care.refuse_on_battery:
        refuse_on_battery(transport, config.name, root)
    if not care.inhibit_sleep:
        return []
    note = inhibit(transport, host=config.name, run_dir=run_dir, run_id=run_id, seconds=seconds)
    return [note] if note else []


def with_notes(details: dict[str, Any], notes: Sequence[str]) -> dict[str, Any]:
    """A run's details with ``notes`` added once each."""
    known = list(details.get("notes", []))
    return {**details, "notes": known + [n for n in notes if n not in known]}
