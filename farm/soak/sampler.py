# SPDX-License-Identifier: Apache-2.0
"""One sample of a host: every counter, taint, uptime, boot id and the load's pulse.

Everything is read by ONE farm-authored ssh command, so a sample is consistent in time
and costs one round trip: /proc/vmstat, /proc/meminfo, /proc/sys/kernel/tainted,
/proc/uptime, the boot id, and whether the run's load process is still alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from farm.errors import InfraError
from farm.hosts.base import Transport

SEPARATOR = "@@farm-sample@@"
_SECTIONS = (
    "cat /proc/sys/kernel/random/boot_id",
    "cat /proc/uptime",
    "cat /proc/sys/kernel/tainted",
    "cat /proc/vmstat",
    "cat /proc/meminfo",
)


U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Reading:
    """A decoded sample."""

    ts: float
    phase: str
    boot_id: str
    uptime: float
    tainted: int
    vmstat: dict[str, int]
    meminfo: dict[str, int]


@dataclass(frozen=True)
class LoadPulse:
    """The load as the host sees it: running, exited with a status, or never started."""

    alive: bool
    exit_code: int | None


def sample_command(run_dir: str | None) -> str:
    parts = [*_SECTIONS]
    if run_dir is not None:
        # run_dir is built by farm.soak.load from a validated path and an integer id.
        parts.append(
            f"if [ -f {run_dir}/pid ] && kill -0 $(cat {run_dir}/pid) 2>/dev/null; "
            f"then echo alive; else cat {run_dir}/exit 2>/dev/null || echo none; fi"
        )
    return f"; echo {SEPARATOR}; ".join(parts)


def _fields(text: str, *, meminfo: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) < 2:
            continue
        try:
            value = int(parts[1])
        except ValueError:
            continue
        # meminfo is in kB; vmstat values are unsigned but a kernel may print them signed.
        out[parts[0]] = value * 1024 if meminfo and parts[-1] == "kB" else value & U64
    return out


def parse_sample(text: str, ts: float, phase: str = "soak") -> tuple[Reading, LoadPulse | None]:
    sections = [s.strip() for s in text.split(SEPARATOR)]
    if len(sections) < len(_SECTIONS):
        raise InfraError(f"sample output has {len(sections)} sections, expected {len(_SECTIONS)}")
    boot_id, uptime, tainted, vmstat, meminfo = sections[: len(_SECTIONS)]
    try:
        reading = Reading(
            ts=ts,
            phase=phase,
            boot_id=boot_id,
            uptime=float(uptime.split()[0]),
            tainted=int(tainted),
            vmstat=_fields(vmstat, meminfo=False),
            meminfo=_fields(meminfo, meminfo=True),
        )
    except (ValueError, IndexError) as exc:
        raise InfraError(f"unreadable sample ({exc}): {text[:200]!r}") from exc
    pulse = None
    if len(sections) > len(_SECTIONS):
        status = sections[len(_SECTIONS)]
        code = int(status) if status.lstrip("-").isdigit() else None
        pulse = LoadPulse(alive=status == "alive", exit_code=code)
    return reading, pulse


def take_sample(
    transport: Transport, *, run_dir: str | None, timeout: float, phase: str = "soak"
) -> tuple[Reading, LoadPulse | None]:
    """Read the host once; HostUnreachable/CommandTimeout propagate to the caller."""
    ts = time.time()
    result = transport.run(sample_command(run_dir), timeout=timeout)
    return parse_sample(result.stdout, ts, phase)
