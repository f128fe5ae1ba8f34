# SPDX-License-Identifier: Apache-2.0
"""A host reached over SSH, composed of power, console and boot-method plugins.

Bare-metal machines and QEMU VMs share this code: booting is "the boot method starts
the kernel, then wait for SSH and check that the kernel we asked for is the one
running". Who is to blame when that fails is decided here, once: a crash on the
console is the kernel's fault (KernelError), anything else is ours (InfraError).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from farm.config import HostConfig
from farm.detect.crash import first_title
from farm.errors import FarmError, InfraError, KernelError
from farm.hosts import keys
from farm.hosts.aftermath import Aftermath, collect_aftermath
from farm.hosts.base import (
    BootableKernel,
    BootedKernel,
    BootMethod,
    Console,
    HostHealth,
    HostUnreachable,
    Power,
    SshEndpoint,
    Transport,
)
from farm.hosts.base import Host as _Host
from farm.hosts.console import tail

BOOT_ID = "/proc/sys/kernel/random/boot_id"
_TAIL_BYTES = 64 * 1024
_MIN_FREE_DISK = 100 * 1024 * 1024
# One round trip for `farm hosts check`: a fixed, farm-authored snippet.
_PROBE = (
    f"uname -r; cat {BOOT_ID}; cut -d' ' -f1 /proc/uptime; stat -f -c '%a %S' /; "
    "if grep -qw pstore /proc/filesystems; then echo pstore; else echo no-pstore; fi"
)


def endpoint_for(c: HostConfig, data_dir: Path) -> SshEndpoint:
    """How to reach a machine with sshd, from its inventory entry."""
    return SshEndpoint(
        name=c.name,
        address=c.address,
        port=c.port,
        user=c.user,
        key=c.key or keys.client_key(data_dir),
        known_hosts=c.known_hosts or keys.known_hosts_path(data_dir),
        connect_timeout=c.connect_timeout,
        command_timeout=c.command_timeout,
        allow_agent=c.allow_agent,
    )


class RemoteHost(_Host):
    """A machine with sshd: the transport is SSH, everything else is a plugin."""

    def __init__(
        self,
        config: HostConfig,
        data_dir: Path,
        *,
        power: Power,
        console: Console,
        boot_method: BootMethod,
    ) -> None:
        super().__init__(config)
        self.data_dir = data_dir
        self._power = power
        self._console = console
        self.boot_method = boot_method

    @property
    def power(self) -> Power:
        return self._power

    @property
    def console(self) -> Console:
        return self._console

    def endpoint(self) -> SshEndpoint:
        return endpoint_for(self.config, self.data_dir)

    def transport(self, connect_timeout: float | None = None) -> Transport:
        from farm.hosts.ssh import connect  # Fabric loads only when a host is contacted

        endpoint = self.endpoint()
        if connect_timeout is not None:
            endpoint = replace(endpoint, connect_timeout=connect_timeout)
        return connect(endpoint)

    def boot(self, kernel: BootableKernel, *, cmdline: str = "") -> BootedKernel:
        since = self.console.end()
        self.boot_method.install(kernel, cmdline)
        booted = self._wait(self.config.boot_timeout, since)
        if booted.release != kernel.release or kernel.build_id not in booted.version:
            what = (
                f"{self.name} runs {booted.release} {booted.version!r}, not the kernel farm "
                f"booted ({kernel.release}, build id {kernel.build_id})"
            )
            if self.config.kind == "ssh":
                # A one-shot boot falls back to the default kernel: the test kernel failed.
                raise KernelError(f"{what}: the test kernel did not stay up{self._evidence()}")
            self._blame(since, what)
        return booted

    def aftermath(self) -> Aftermath | None:
        """What the host kept of a crash of its last boot (None for a QEMU VM, whose
        crash ends its process: its console has it all)."""
        if self.config.kind != "ssh":
            return None
        with self.transport() as ssh:
            return collect_aftermath(ssh, user=self.config.user, host=self.name)

    def _evidence(self) -> str:
        try:
            found = self.aftermath()
        except FarmError as exc:
            return f" (no evidence collected: {exc})"
        if found is None or found.empty:
            return " (no pstore record, no kernel log of the previous boot)"
        titles = [crash.title for crash in found.crashes()]
        named = f": {'; '.join(titles)}" if titles else ""
        return f"{named}\n--- pstore and previous boot's kernel log ---\n{found.excerpt()}"

    def wait_ready(self, timeout: float | None = None) -> BootedKernel:
        return self._wait(timeout or self.config.boot_timeout, self._boot_console_offset())

    def _boot_console_offset(self) -> int:
        """Where this boot's console output starts (unknown here: the recent tail)."""
        return max(0, self.console.end() - _TAIL_BYTES)

    def _wait(self, timeout: float, since: int) -> BootedKernel:
        start = time.monotonic()
        deadline = start + timeout
        last: FarmError | None = None
        while time.monotonic() < deadline:
            if self.power.state() == "off":
                waited = time.monotonic() - start
                self._blame(since, f"{self.name} is powered off (after {waited:.0f}s of waiting)")
            remaining = deadline - time.monotonic()
            try:
                with self.transport(min(self.config.connect_timeout, max(remaining, 1.0))) as ssh:
                    return self._booted(ssh)
            except HostUnreachable as exc:
                last = exc
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        self._blame(since, f"{self.name} did not answer SSH within {timeout:g}s ({last})")

    def _booted(self, ssh: Transport) -> BootedKernel:
        out = ssh.run(f"uname -r; uname -v; cat {BOOT_ID}").stdout.splitlines()
        if len(out) != 3:
            raise InfraError(f"{self.name}: unexpected answer to uname/boot_id: {out!r}")
        return BootedKernel(release=out[0], version=out[1], boot_id=out[2])

    def _blame(self, since: int, what: str) -> NoReturn:
        """Raise KernelError if the console shows a crash since ``since``, else InfraError."""
        text = tail(self.console, max(since, self.console.end() - _TAIL_BYTES))
        crash = first_title(text)  # tells "the kernel died" from "our network failed"
        shown = f"\n--- console tail ---\n{text}" if text else " (no console output captured)"
        if crash:
            raise KernelError(f"{what}; the kernel crashed: {crash}{shown}")
        raise InfraError(what + shown, hint=f"farm hosts check {self.name}")

    def boot_id(self) -> str:
        with self.transport() as ssh:
            return ssh.run(["cat", BOOT_ID]).stdout.strip()

    def check(self) -> HostHealth:
        health = HostHealth(name=self.name, ok=False)
        boot_problems = self.boot_method.problems()
        health.boot_method_ok = not boot_problems
        health.problems.extend(boot_problems)
        if self.power.state() == "off":
            health.problems.append(f"{self.name} is powered off")
            return health
        try:
            with self.transport() as ssh:
                self._probe(ssh, health)
        except FarmError as exc:
            health.problems.append(str(exc))
        health.ok = not health.problems
        return health

    def _probe(self, ssh: Transport, health: HostHealth) -> None:
        lines = ssh.run(_PROBE).stdout.splitlines()
        try:
            release, boot_id, uptime, disk, pstore = lines
            blocks, block_size = disk.split()
            health.uptime_seconds = float(uptime)
            health.free_disk_bytes = int(blocks) * int(block_size)
        except ValueError:
            health.problems.append(f"unexpected answer to the health probe: {lines!r}")
            return
        health.kernel_release, health.boot_id = release, boot_id
        health.pstore = pstore == "pstore"
        if health.free_disk_bytes < _MIN_FREE_DISK:
            free_mib = health.free_disk_bytes // (1024 * 1024)
            health.problems.append(f"only {free_mib} MiB free on / (need 100 MiB)")
