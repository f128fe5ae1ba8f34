# SPDX-License-Identifier: Apache-2.0
"""One-shot boots of a test kernel on a machine of one's own: ``grub`` and ``kexec``.

Neither changes what the machine boots by default. ``grub`` arms ``grub-reboot
farm-<release>`` (grub forgets it after one boot) and reboots; ``kexec`` loads the
kernel with ``kexec -l`` and asks systemd for a clean ``systemctl kexec``. Either way the
test kernel's command line is the running one's (the machine's own root=, console=...)
without its ``panic=``, plus the host's and the run's words, plus ``panic=N``: a
crashing test kernel reboots by itself, and the next boot is the default kernel.

``install`` returns once the machine has gone down; RemoteHost then waits for SSH and
checks which kernel came up (see farm.hosts.remote).
"""

from __future__ import annotations

import time
from pathlib import Path

from farm.config import HostConfig
from farm.errors import FarmError, InfraError, UserError
from farm.hosts.base import (
    BootableKernel,
    BootMethod,
    CommandTimeout,
    HostUnreachable,
    Transport,
)
from farm.hosts.install import (
    InstalledKernel,
    Root,
    check_grub_entry,
    grub_default,
    install_kernel,
)
from farm.hosts.remote import endpoint_for

# Command line words of the running kernel that describe its own boot, not the machine.
_REPLACED = ("BOOT_IMAGE=", "initrd=", "panic=")
# Detached and a second late, so the command that asked returns before sshd stops.
_LATER = 'nohup sh -c "sleep 1; exec systemctl $1" >/dev/null 2>&1 &'
_DOWN_TIMEOUT = 180.0


def boot_cmdline(current: str, extra: str, panic_seconds: int) -> list[str]:
    """The test kernel's command line: the running one's, ``extra``, ``panic=N``."""
    added = extra.split()
    kept = [w for w in current.split() if not w.startswith(_REPLACED) and w not in added]
    return [*kept, *added, f"panic={panic_seconds}"]


class OneShotBoot(BootMethod):
    """Install over SSH, arm a boot that happens once, restart; subclasses arm."""

    tools: tuple[str, ...] = ()

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir

    def connect(self) -> Transport:
        from farm.hosts.ssh import connect  # Fabric loads only when a host is contacted

        return connect(endpoint_for(self.config, self.data_dir))

    def root(self, transport: Transport) -> Root:
        return Root(transport, user=self.config.user, host=self.config.name)

    def install(self, kernel: BootableKernel, cmdline: str) -> None:
        metal = self.config.metal
        with self.connect() as transport:
            root = self.root(transport)
            self.preflight(root)
            current = transport.run(["cat", "/proc/cmdline"]).stdout
            words = (metal.cmdline, cmdline, self._netconsole(transport))
            extra = " ".join(w for w in words if w)
            installed = install_kernel(
                root,
                kernel,
                boot_cmdline(current, extra, metal.panic_seconds),
                initramfs=metal.initramfs,
                keep=metal.keep_kernels,
                grub=self.name == "grub",
            )
            action = self.arm(root, installed)
            root.sh(_LATER, action)
            self._wait_down(transport)

    def _netconsole(self, transport: Transport) -> str:
        """``netconsole=`` to ``farm netconsole`` on the controller, at the address the
        host sees farm's SSH connection come from."""
        if self.config.console.kind != "netconsole":
            return ""
        from farm.hosts.netconsole import netconsole_param

        controller = transport.run('printf %s "${SSH_CONNECTION%% *}"').stdout.strip()
        return netconsole_param(self.config, controller)

    def preflight(self, root: Root) -> None:
        """Raise UserError if the host is not set up for this boot method."""
        missing = root.sh(
            'for t in "$@"; do command -v "$t" >/dev/null || echo "$t"; done', *self.tools
        ).stdout.split()
        if missing:
            raise UserError(
                f"{self.config.name} lacks {', '.join(missing)}, needed to boot with {self.name!r}",
                hint="see docs/baremetal.md for the packages to install",
            )

    def arm(self, root: Root, kernel: InstalledKernel) -> str:
        """Make the next boot (only) run ``kernel``; the systemctl verb that starts it."""
        raise NotImplementedError

    def _wait_down(self, transport: Transport) -> None:
        """Until the old boot stops answering: a fast check must not see it as the new one."""
        deadline = time.monotonic() + _DOWN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                transport.run(["true"], timeout=10)
            except (HostUnreachable, CommandTimeout):
                return
            time.sleep(0.5)
        raise InfraError(
            f"{self.config.name} was asked to restart into the test kernel but still "
            f"answers after {_DOWN_TIMEOUT:g}s",
            hint=f"farm hosts check {self.config.name}",
        )

    def problems(self) -> list[str]:
        try:
            with self.connect() as transport:
                self.preflight(self.root(transport))
        except HostUnreachable:
            return []  # the health probe reports that the host does not answer
        except FarmError as exc:
            return [str(exc)]
        return []


class GrubBoot(OneShotBoot):
    """``grub-reboot farm-<release>`` then reboot; needs GRUB_DEFAULT=saved."""

    name = "grub"
    tools = ("grub-reboot", "grub-editenv", "update-grub", "systemctl")

    def preflight(self, root: Root) -> None:
        super().preflight(root)
        default = grub_default(root)
        if default != "saved":
            raise UserError(
                f"{self.config.name}: GRUB_DEFAULT is {default!r}; grub-reboot needs "
                "GRUB_DEFAULT=saved, or grub ignores the one-shot entry",
                hint=f"on {self.config.name}: set GRUB_DEFAULT=saved in /etc/default/grub, "
                "then `update-grub` (the default entry stays the first one)",
            )

    def arm(self, root: Root, kernel: InstalledKernel) -> str:
        entry = check_grub_entry(root, kernel.release)
        root.run(["grub-reboot", entry])
        env = root.run(["grub-editenv", "list"]).stdout.split()
        if f"next_entry={entry}" not in env:
            raise InfraError(f"{self.config.name}: grub-reboot {entry} left grubenv {env}")
        return "reboot"


class KexecBoot(OneShotBoot):
    """``kexec -l`` then ``systemctl kexec``: no firmware, no grub, still a clean stop."""

    name = "kexec"
    tools = ("kexec", "systemctl")

    def arm(self, root: Root, kernel: InstalledKernel) -> str:
        argv = ["kexec", "-l", kernel.image, f"--append={kernel.cmdline}"]
        if kernel.initrd:
            argv.append(f"--initrd={kernel.initrd}")
        root.run(argv)
        return "kexec"
