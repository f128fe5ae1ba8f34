# SPDX-License-Identifier: Apache-2.0
"""One sample of a host: every counter, taint, uptime, boot id and the load's pulse.

Everything is read by ONE farm-authored ssh command, so a sample is consistent in time
and costs one round trip: /proc/vmstat, /proc/meminfo, /proc/sys/kernel/tainted,
/proc/uptime, the boot id, and whether the run's load process is still alive; and what
an mm developer looks at beside them (``Reading.mm``, names prefixed by family):

- ``psi:<resource>_<some|full>_total_us`` (cumulative stall time) and ``..._avg10``
  (hundredths of a percent) from /proc/pressure/*;
- ``buddy:<zone>_<order>``: free blocks per zone and order, /proc/buddyinfo (all nodes);
- ``slab:<cache>``: bytes of the 10 largest slab caches and ``slab:total``
  (/proc/slabinfo; root or passwordless sudo);
- ``memcg:<field>``: memory.stat of the load's cgroup (cgroup v2): the directory a load
  that makes its own cgroup writes to ``$FARM_DIR/cgroup``, else its process's cgroup;
- ``thp:<knob>``: khugepaged's pages_collapsed and full_scans.

A host without one of them (an old kernel, no PSI) simply has no such names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
TOP_SLABS = 10
_THP = "/sys/kernel/mm/transparent_hugepage/khugepaged"
_MM_SECTIONS = (
    "grep . /proc/pressure/memory /proc/pressure/io /proc/pressure/cpu 2>/dev/null",
    "cat /proc/buddyinfo 2>/dev/null",
    "cat /proc/slabinfo 2>/dev/null || sudo -n cat /proc/slabinfo 2>/dev/null",
    f"grep . {_THP}/pages_collapsed {_THP}/full_scans 2>/dev/null",
)


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
    mm: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadPulse:
    """The load as the host sees it: running, exited with a status, or never started."""

    alive: bool
    exit_code: int | None


def sample_command(run_dir: str | None) -> str:
    # run_dir is built by farm.soak.load from a validated path and an integer id.
    memcg = "true"
    if run_dir is not None:
        # The cgroup a load made for itself ($FARM_DIR/cgroup holds its directory), else
        # the one its process is in, when that is not the root.
        memcg = (
            f"cg=$(cat {run_dir}/cgroup 2>/dev/null); "
            f'if [ -z "$cg" ]; then rel=$(sed -n "s/^0:://p" '
            f"/proc/$(cat {run_dir}/pid 2>/dev/null)/cgroup 2>/dev/null); "
            f'[ -n "$rel" ] && [ "$rel" != / ] && cg="/sys/fs/cgroup$rel"; fi; '
            f'[ -n "$cg" ] && cat "$cg/memory.stat" 2>/dev/null'
        )
    parts = [*_SECTIONS, *_MM_SECTIONS, f"{memcg}; true"]
    if run_dir is not None:
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


def _psi(text: str) -> dict[str, int]:
    """``/proc/pressure/memory:some avg10=1.25 avg60=0.50 avg300=0.10 total=12345``."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        path, _, rest = line.partition(":")
        kind, *pairs = rest.split()
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        name = f"psi:{path.rsplit('/', 1)[-1]}_{kind}"
        if "total" in values:
            out[f"{name}_total_us"] = int(values["total"])
        if "avg10" in values:
            out[f"{name}_avg10"] = round(float(values["avg10"]) * 100)
    return out


def _buddyinfo(text: str) -> dict[str, int]:
    """``Node 0, zone   Normal   12  5  3 ...``: free blocks per order, nodes summed."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        words = line.replace(",", " ").split()
        if len(words) < 5 or words[0] != "Node" or words[2] != "zone":
            continue
        for order, count in enumerate(words[4:]):
            key = f"buddy:{words[3]}_{order}"
            out[key] = out.get(key, 0) + int(count)
    return out


def _slabinfo(text: str, top: int = TOP_SLABS) -> dict[str, int]:
    """Bytes (objects x object size) of the largest caches, and of all of them."""
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or line.startswith(("#", "slabinfo")):
            continue
        sizes[words[0]] = int(words[2]) * int(words[3])  # <num_objs> * <objsize>
    largest = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:top]
    out = {f"slab:{name}": size for name, size in largest}
    if sizes:
        out["slab:total"] = sum(sizes.values())
    return out


def _prefixed(text: str, prefix: str, *, path_keys: bool = False) -> dict[str, int]:
    """``name value`` lines (or ``/path/name:value`` from grep) as ``prefix:name``."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(":") if path_keys else line.partition(" ")
        name = name.rsplit("/", 1)[-1] if path_keys else name
        if value.strip().isdigit():
            out[f"{prefix}:{name}"] = int(value)
    return out


def parse_mm(psi: str, buddy: str, slab: str, thp: str, memcg: str) -> dict[str, int]:
    return {
        **_psi(psi), **_buddyinfo(buddy), **_slabinfo(slab),
        **_prefixed(thp, "thp", path_keys=True), **_prefixed(memcg, "memcg"),
    }  # fmt: skip


def parse_sample(text: str, ts: float, phase: str = "soak") -> tuple[Reading, LoadPulse | None]:
    sections = [s.strip() for s in text.split(SEPARATOR)]
    fixed = len(_SECTIONS) + len(_MM_SECTIONS) + 1
    if len(sections) < fixed:
        raise InfraError(f"sample output has {len(sections)} sections, expected {fixed}")
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
            mm=parse_mm(*sections[len(_SECTIONS) : fixed]),
        )
    except (ValueError, IndexError) as exc:
        raise InfraError(f"unreadable sample ({exc}): {text[:200]!r}") from exc
    pulse = None
    if len(sections) > fixed:
        status = sections[fixed]
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
