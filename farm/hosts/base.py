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
        raises KernelError/InfraError on a non-zero exit. Dropped connections and
        timeouts raise InfraError (HostUnreachable)."""

    @abc.abstractmethod
    def put(self, data: bytes, remote_path: str, *, mode: int = 0o644) -> None:
        """Write a file on the host; works without SFTP."""

    @abc.abstractmethod
    def get(self, remote_path: str) -> bytes:
        """Read a file from the host."""

    @abc.abstractmethod
    def close(self) -> None: ...


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


class Host(abc.ABC):
    """A test machine. Long-lived state (a VM's process, its port) lives on disk under
    the data directory, so any worker process can pick up a host another one started."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.name = config.name

    @abc.abstractmethod
    def transport(self) -> Transport:
        """A connected transport; the caller closes it."""

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
    def boot_id(self) -> str:
        """/proc/sys/kernel/random/boot_id: a change means the host rebooted."""

    @abc.abstractmethod
    def check(self) -> HostHealth:
        """Connect and report health, with a reason for every problem."""
