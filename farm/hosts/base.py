# SPDX-License-Identifier: Apache-2.0
"""What every host is: the contract between the hosts stage and its callers.

A host is a transport (SSH), a boot method, a power plugin and a console. Hosts know
nothing of Celery or the database: the scheduler drives them, they do not decide.
A QEMU virtual host implements exactly this interface, so the demo and the tests run
the same code paths as a bare-metal laptop.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from farm.config import HostConfig
from farm.errors import InfraError, UserError


class HostUnreachable(InfraError):
    """The host did not answer, or the connection dropped (a crash looks like this too)."""


class CommandTimeout(InfraError):
    """A command did not finish within its timeout; the channel was closed."""


class CommandFailed(InfraError):
    """A farm-authored command exited non-zero on the host (``check=True``)."""


class HostKeyError(UserError):
    """The host's SSH key is unknown or changed: a human must verify it, never retried."""


class BootableKernel(Protocol):
    """What a boot method needs of a build (farm.build's artifacts satisfy it)."""

    @property
    def bzimage(self) -> Path: ...
    @property
    def system_map(self) -> Path: ...
    @property
    def release(self) -> str:
        """`uname -r` the kernel will report."""

    @property
    def build_id(self) -> str:
        """A string baked into the build that `uname -v` shows, to verify the boot."""


@dataclass(frozen=True)
class SshEndpoint:
    """Where and how to reach a host's sshd; built from its HostConfig by farm.hosts."""

    name: str
    address: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    connect_timeout: float = 10.0
    command_timeout: float = 300.0
    allow_agent: bool = False
    rekey_hint: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.address}:{self.port})"


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class BootedKernel:
    release: str
    version: str
    boot_id: str


@dataclass
class HostHealth:
    name: str
    ok: bool
    kernel_release: str | None = None
    boot_id: str | None = None
    uptime_seconds: float | None = None
    free_disk_bytes: int | None = None
    pstore: bool | None = None
    boot_method_ok: bool | None = None
    problems: list[str] = field(default_factory=list)


class Transport(abc.ABC):
    """A command channel to a host. Only farm.hosts.ssh implements it with Fabric."""

    @abc.abstractmethod
    def run(
        self,
        argv: Sequence[str] | str,
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run a command. A list is quoted word by word (use it for anything that
        carries data); a string is a fixed, farm-authored shell snippet. ``check``
        raises CommandFailed on a non-zero exit. A dropped connection raises
        HostUnreachable, a timeout CommandTimeout (both InfraError); ``timeout``
        defaults to the host's ``command_timeout``."""

    @abc.abstractmethod
    def put(self, data: bytes, remote_path: str, *, mode: int = 0o644) -> None:
        """Write a file on the host; works without SFTP."""

    @abc.abstractmethod
    def get(self, remote_path: str) -> bytes:
        """Read a file from the host."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Power(abc.ABC):
    """Switches a host off and on: plugins registered by name (none, qemu, command, manual)."""

    name: str

    @abc.abstractmethod
    def on(self) -> None: ...
    @abc.abstractmethod
    def off(self) -> None: ...
    @abc.abstractmethod
    def cycle(self) -> None: ...
    @abc.abstractmethod
    def state(self) -> Literal["on", "off", "unknown"]: ...


class Console(abc.ABC):
    """The kernel's console output of a host, read incrementally."""

    @abc.abstractmethod
    def read(self, offset: int) -> tuple[bytes, int]:
        """Bytes written since ``offset`` and the offset to pass next time."""

    @abc.abstractmethod
    def end(self) -> int:
        """The current end offset: read from here to see only what comes next."""


class BootMethod(abc.ABC):
    """Makes a host run a given kernel: plugins registered by name (qemu; grub and kexec
    for bare metal). The host then waits for SSH and verifies what booted."""

    name: str

    @abc.abstractmethod
    def install(self, kernel: BootableKernel, cmdline: str) -> None:
        """Install ``kernel`` and start it (reboot, kexec or a new VM); do not wait."""

    def problems(self) -> list[str]:
        """Why this boot method cannot work on the host now (empty when it can)."""
        return []


class Host(abc.ABC):
    """A test machine. Long-lived state (a VM's process, its port) lives on disk under
    the data directory, so any worker process can pick up a host another one started."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.name = config.name

    @abc.abstractmethod
    def transport(self, connect_timeout: float | None = None) -> Transport:
        """A connected transport (use it in a ``with``); the caller closes it."""

    @property
    @abc.abstractmethod
    def power(self) -> Power: ...

    @property
    @abc.abstractmethod
    def console(self) -> Console: ...

    @abc.abstractmethod
    def boot(self, kernel: BootableKernel, *, cmdline: str = "") -> BootedKernel:
        """Install and boot ``kernel``, then verify it is the one running.
        A kernel that never comes up raises KernelError with the console tail;
        our failures raise InfraError."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float | None = None) -> BootedKernel:
        """Wait until the host answers SSH again (after a power cycle or a reboot).
        Raises like ``boot``: KernelError if the console shows a crash, else InfraError."""

    @abc.abstractmethod
    def boot_id(self) -> str:
        """/proc/sys/kernel/random/boot_id: a change means the host rebooted."""

    @abc.abstractmethod
    def check(self) -> HostHealth:
        """Connect and report health, with a reason for every problem."""
