# SPDX-License-Identifier: Apache-2.0
"""Consoles: where a host's kernel messages can be read, even after it died.

A QEMU host's serial port is appended to ``<data_dir>/hosts/<name>/console.log``; a lab
machine's serial console captured by a terminal server can be the same kind of file.
Readers keep an offset, so each boot or soak reads only what is new.
"""

from __future__ import annotations

from pathlib import Path

from farm.config import HostConfig
from farm.hosts.base import Console


def host_dir(config: HostConfig, data_dir: Path) -> Path:
    """Per-host state that any process can find: VM pid, port, console, keys."""
    return data_dir / "hosts" / config.name


def console_path(config: HostConfig, data_dir: Path) -> Path:
    return config.console.path or host_dir(config, data_dir) / "console.log"


class SerialFileConsole(Console):
    """A serial console appended to a file by QEMU or a terminal server."""

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.path = console_path(config, data_dir)

    def read(self, offset: int) -> tuple[bytes, int]:
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                start = offset if 0 <= offset <= size else 0  # truncated: start over
                handle.seek(start)
                data = handle.read()
        except FileNotFoundError:
            return b"", 0
        return data, start + len(data)

    def end(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


class NullConsole(Console):
    """A host without a readable console: crashes are seen only as lost SSH."""

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        del config, data_dir

    def read(self, offset: int) -> tuple[bytes, int]:
        return b"", offset

    def end(self) -> int:
        return 0


def tail(console: Console, since: int, lines: int = 40) -> str:
    """The last ``lines`` lines written after offset ``since``, for error messages."""
    data, _ = console.read(since)
    text = data.decode(errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])
