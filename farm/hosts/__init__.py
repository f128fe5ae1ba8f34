# SPDX-License-Identifier: Apache-2.0
"""Hosts: test machines reached over SSH, real or QEMU, built from the inventory.

``get_host(config, name)`` composes a host from plugins registered by name below:
its kind (how it is reached), its power, its console and its boot method. A new
bare-metal boot method or power switch is one class and one line here.
Importing this package does not import Fabric: that happens on first contact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from farm.config import FarmConfig, HostConfig
from farm.errors import UserError
from farm.hosts.base import (
    BootableKernel,
    BootedKernel,
    BootMethod,
    CommandFailed,
    CommandResult,
    CommandTimeout,
    Console,
    Host,
    HostHealth,
    HostKeyError,
    HostUnreachable,
    Power,
    SshEndpoint,
    Transport,
)
from farm.hosts.console import NullConsole, SerialFileConsole
from farm.hosts.netconsole import NetconsoleConsole
from farm.hosts.oneshot import GrubBoot, KexecBoot
from farm.hosts.power import CommandPower, ManualPower, NoPower, QemuPower
from farm.hosts.qemu import KernelImage, QemuBoot, QemuHost
from farm.hosts.remote import RemoteHost

# "sim" (farm.soak.sim, for scale measurements) registers itself here when asked to.
HOST_KINDS: dict[str, Callable[..., Host]] = {"ssh": RemoteHost, "qemu": QemuHost}
POWER: dict[str, Callable[[HostConfig, Path], Power]] = {
    "none": NoPower,
    "command": CommandPower,
    "manual": ManualPower,
    "qemu": QemuPower,
}
CONSOLES: dict[str, Callable[[HostConfig, Path], Console]] = {
    "none": NullConsole,
    "serial-file": SerialFileConsole,
    "netconsole": NetconsoleConsole,
}
BOOT_METHODS: dict[str, Callable[[HostConfig, Path], BootMethod]] = {
    "qemu": QemuBoot,
    "grub": GrubBoot,
    "kexec": KexecBoot,
}


def _plugin(registry: Mapping[str, object], what: str, key: str) -> None:
    if key not in registry:
        known = ", ".join(sorted(registry))
        raise UserError(f"{what} {key!r} is not available yet (available: {known})")


def get_host(config: FarmConfig, name: str) -> Host:
    """The host ``name`` of the inventory, with its plugins; a UserError if unknown."""
    host = config.host(name)
    boot = host.boot or "grub"
    for registry, what, key in (
        (HOST_KINDS, "host kind", host.kind),
        (POWER, "power kind", host.power.kind),
        (CONSOLES, "console kind", host.console.kind),
        (BOOT_METHODS, "boot method", boot),
    ):
        _plugin(registry, f"host {name}: {what}", key)
    data = config.data_dir
    return HOST_KINDS[host.kind](
        host,
        data,
        power=POWER[host.power.kind](host, data),
        console=CONSOLES[host.console.kind](host, data),
        boot_method=BOOT_METHODS[boot](host, data),
    )


__all__ = [
    "BOOT_METHODS",
    "CONSOLES",
    "HOST_KINDS",
    "POWER",
    "BootMethod",
    "BootableKernel",
    "BootedKernel",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "Console",
    "Host",
    "HostHealth",
    "HostKeyError",
    "HostUnreachable",
    "KernelImage",
    "Power",
    "SshEndpoint",
    "Transport",
    "get_host",
]
