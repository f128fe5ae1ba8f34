# SPDX-License-Identifier: Apache-2.0
"""Serial-file consoles and telling a crash from silence."""

from __future__ import annotations

from pathlib import Path

from farm.config import ConsoleConfig, HostConfig
from farm.detect.crash import first_title
from farm.hosts.console import SerialFileConsole, tail

PANIC = """\
[    2.310000] Run /init as init process
[   40.120000] sysrq: Trigger a crash
[   40.121000] Kernel panic - not syncing: sysrq triggered crash
[   40.122000] CPU: 0 PID: 93 Comm: sh Not tainted 6.1.192 #1
"""


def console(tmp_path: Path) -> SerialFileConsole:
    config = HostConfig(
        name="laptop",
        kind="ssh",
        address="127.0.0.1",
        console=ConsoleConfig(kind="serial-file", path=tmp_path / "c"),
    )
    return SerialFileConsole(config, tmp_path)


def test_reads_are_incremental_and_survive_truncation(tmp_path: Path) -> None:
    serial = console(tmp_path)
    assert serial.read(0) == (b"", 0) and serial.end() == 0  # nothing logged yet
    serial.path.write_bytes(b"boot 1\n")
    data, offset = serial.read(0)
    with serial.path.open("ab") as log:
        log.write(b"boot 2\n")
    assert (data, serial.read(offset)[0]) == (b"boot 1\n", b"boot 2\n")
    serial.path.write_bytes(b"new\n")  # rotated underneath us: start over
    assert serial.read(offset) == (b"new\n", 4)


def test_the_first_crash_line_is_found_and_quiet_boots_have_none(tmp_path: Path) -> None:
    assert first_title(PANIC) == "kernel panic: sysrq triggered crash"
    assert first_title("[    1.0] Run /init as init process\nfarm: laptop up\n") is None
    serial = console(tmp_path)
    serial.path.write_text("old boot\n" + PANIC)
    assert tail(serial, len("old boot\n"), lines=2).splitlines() == PANIC.splitlines()[-2:]
