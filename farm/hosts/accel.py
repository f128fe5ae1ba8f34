# SPDX-License-Identifier: Apache-2.0
"""Which QEMU accelerator a VM gets: KVM when a guest really runs on it, else TCG.

``/dev/kvm`` existing proves little: on a nested or paravirtualised host KVM can open,
run a few instructions and then stall the moment the guest turns on paging, or QEMU
can abort on an MSR it cannot set. So ``auto`` starts a tiny guest once per machine
boot: a 77-byte multiboot image that goes through the firmware and the option ROM a
``-kernel`` boot uses, enables paging (the first thing a kernel does) and reports
through QEMU's ``isa-debug-exit`` port. Only a guest that reports within the time
limit counts as a working KVM; anything else falls back to TCG with one log line
naming the failure. The answer is cached per boot of the controller and QEMU binary
(``<cache>/qemu-accel.json``), so each machine pays the probe once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

from farm.build.tree import farm_cache_dir, file_lock

log = logging.getLogger(__name__)

Accel = Literal["kvm", "tcg"]
# A working KVM runs the probe (firmware, then paging on) in well under a second, even
# on a loaded machine; a broken one stalls for good, and every fresh machine waits this.
PROBE_SECONDS = 8.0
_EXIT_PORT = 0xF4
_EXIT_VALUE = 0x2A  # isa-debug-exit makes QEMU exit with (value << 1) | 1
_BASE = 0x100000  # the multiboot image is loaded at 1 MiB
# 32-bit protected mode code run by the multiboot entry: an identity-mapped 4 MiB page
# (PSE) at 2 MiB as the page directory, CR4.PSE, CR3, CR0.PG; then report and halt.
_PAGING = bytes.fromhex(
    "c7050000200083000000"  # mov dword [0x200000], 0x83 (present, writable, 4 MiB)
    "0f20e083c8100f22e0"  # mov eax, cr4; or eax, 0x10 (PSE); mov cr4, eax
    "b8000020000f22d8"  # mov eax, 0x200000; mov cr3, eax
    "0f20c00d000000800f22c0"  # mov eax, cr0; or eax, 0x80000000 (PG); mov cr0, eax
)
_REPORT = bytes([0xB0, _EXIT_VALUE, 0xE6, _EXIT_PORT, 0xF4, 0xEB, 0xFE])  # out; hlt; jmp $


@dataclass(frozen=True)
class Probe:
    """What the probe found: the accelerator to use and, for TCG, why."""

    accel: Accel
    reason: str
    key: str


def probe_image() -> bytes:
    """A multiboot (a.out kludge) flat image whose entry follows its 32-byte header."""
    magic, flags = 0x1BADB002, 0x00010000
    header = struct.pack(
        "<8I", magic, flags, -(magic + flags) & 0xFFFFFFFF, _BASE, _BASE, 0, 0, _BASE + 32
    )
    return header + _PAGING + _REPORT


def probe_argv(qemu: str, accel: Accel, image: Path) -> list[str]:
    return [
        qemu, "-accel", accel, "-nodefaults", "-no-user-config", "-display", "none",
        "-m", "32", "-kernel", str(image),
        "-device", f"isa-debug-exit,iobase={_EXIT_PORT:#x},iosize=0x04",
    ]  # fmt: skip


def run_probe(qemu: str, accel: Accel, timeout: float = PROBE_SECONDS) -> str | None:
    """Boot the probe guest with ``accel``; None when it reported, else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="farm-accel-") as tmp:
        image = Path(tmp) / "probe.mb"
        image.write_bytes(probe_image())
        try:
            done = subprocess.run(
                probe_argv(qemu, accel, image),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            return f"{qemu} is not installed"
        except subprocess.TimeoutExpired:
            return f"the probe guest (firmware, then paging on) did not report within {timeout:g} s"
    if done.returncode == (_EXIT_VALUE << 1) | 1:
        return None
    errors = [line for line in done.stderr.splitlines() if "warning:" not in line]
    return errors[-1].strip() if errors else f"QEMU exited {done.returncode}"


def machine_key(qemu: str) -> str:
    """This boot of this machine with this QEMU binary: a new kernel, a reboot or a QEMU
    upgrade can change whether KVM works."""
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    path = shutil.which(qemu) or qemu
    try:
        stat = os.stat(path)
        binary = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        binary = path
    return hashlib.sha256(f"{boot_id}\n{binary}".encode()).hexdigest()[:16]


def kvm_probe(qemu: str, cache: Path | None = None) -> Probe:
    """Whether KVM runs a guest here, probed once per machine boot and cached; VMs
    starting together wait for one probe."""
    cache = cache or farm_cache_dir() / "qemu-accel.json"
    key = machine_key(qemu)
    with file_lock(cache.with_name(f"{cache.name}.lock")):
        cached = _cached(cache, key)
        if cached is not None:
            return cached
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            result = Probe("tcg", "/dev/kvm is missing or not accessible to this user", key)
        else:
            error = run_probe(qemu, "kvm")
            result = Probe("tcg", error, key) if error else Probe("kvm", "", key)
        if result.accel == "tcg":
            log.warning("QEMU: KVM unusable here (%s); using TCG", result.reason)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(result)))
        os.replace(tmp, cache)
    return result


def _cached(cache: Path, key: str) -> Probe | None:
    try:
        cached = Probe(**json.loads(cache.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # no answer yet, or an unreadable one: probe again
    return cached if cached.key == key else None


def overrides_accel(extra_args: list[str]) -> bool:
    """Whether the user's ``extra_args`` choose the accelerator themselves."""
    for arg, value in pairwise([*extra_args, ""]):
        if arg in ("-accel", "-enable-kvm", "--enable-kvm"):
            return True
        if arg in ("-machine", "-M") and "accel=" in value:
            return True
    return False


def accel_args(
    choice: Literal["auto", "kvm", "tcg"], qemu: str, extra_args: list[str]
) -> list[str]:
    """The ``-accel`` arguments for a VM; none when ``extra_args`` choose."""
    if overrides_accel(extra_args):
        return []
    if choice == "auto":
        choice = kvm_probe(qemu).accel
    if choice == "kvm":
        # The guest sees the host's CPU: the features a developer's VM would have.
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg"]
