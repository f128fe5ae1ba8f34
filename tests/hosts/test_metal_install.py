# SPDX-License-Identifier: Apache-2.0
"""Installing and one-shot booting on a machine of one's own: the parts that need no VM.

The whole path (install, grub-reboot, crash, fall back, pstore) runs in test_metal.py on
a disk-booted Debian VM; here are the rules it relies on, and the root channel over a
real sshd.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Sshd

from farm.errors import UserError
from farm.hosts.aftermath import Aftermath, _kernel_lines
from farm.hosts.install import Root, check_release, grub_quote
from farm.hosts.oneshot import boot_cmdline
from farm.hosts.ssh import connect

SYSRQ_RECORD = """Panic#1 Part1
<6>[   10.000000] sysrq: Trigger a crash
<0>[   10.000100] Kernel panic - not syncing: sysrq triggered crash
<4>[   10.000200] CPU: 0 PID: 1 Comm: sh Not tainted 6.1.192-farm+ #farm-d5c64151d306
<4>[   10.000300] Call Trace:
<4>[   10.000400]  <TASK>
<4>[   10.000500]  dump_stack_lvl+0x45/0x5e
<4>[   10.000600]  panic+0x10d/0x2a7
<4>[   10.000700]  sysrq_handle_crash+0x15/0x20
<4>[   10.000800]  __handle_sysrq+0x8e/0x150
<4>[   10.000900]  write_sysrq_trigger+0x24/0x40
<4>[   10.001500]  </TASK>
<0>[   10.001600] Kernel Offset: disabled
"""


def test_the_test_kernel_keeps_the_machines_command_line_but_always_panics_into_a_reboot() -> None:
    current = (
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=/dev/vda1 ro console=ttyS0,115200 "
        "memmap=1M$0x3f000000 panic=0 quiet initrd=/boot/initrd.img"
    )
    words = boot_cmdline(current, "quiet oops=panic", 10)
    assert words == [
        "root=/dev/vda1", "ro", "console=ttyS0,115200", "memmap=1M$0x3f000000",
        "quiet", "oops=panic", "panic=10",
    ]  # fmt: skip


def test_grub_gets_every_word_literally() -> None:
    assert grub_quote(["root=/dev/vda1", "memmap=1M$0x3f000000"]) == (
        "root=/dev/vda1 'memmap=1M$0x3f000000'"
    )
    with pytest.raises(UserError, match="has a quote"):
        grub_quote(["init=/bin/sh -c 'x'"])


@pytest.mark.parametrize("release", ["6.1.0-18-amd64", "../../etc/farm", "6.1-farm;reboot"])
def test_farm_installs_and_cleans_up_only_kernels_marked_as_its_own(release: str) -> None:
    with pytest.raises(UserError) as refused:
        check_release(release)
    assert 'CONFIG_LOCALVERSION="-farm"' in str(refused.value)


def test_a_farm_release_is_accepted() -> None:
    check_release("6.1.192-farm+")


def test_pstore_and_the_previous_boots_journal_read_like_a_console() -> None:
    journal = _kernel_lines(
        "[   10.000000] farm-diskvm kernel: sysrq: Trigger a crash\n"
        "[   10.000100] farm-diskvm kernel: Kernel panic - not syncing: sysrq triggered crash"
    )
    assert journal.splitlines()[1] == (
        "[   10.000100] Kernel panic - not syncing: sysrq triggered crash"
    )
    found = Aftermath({"/sys/fs/pstore/dmesg-ramoops-0": SYSRQ_RECORD}, journal)
    assert found.text.startswith("==> /sys/fs/pstore/dmesg-ramoops-0 <==\nPanic#1 Part1")
    assert {crash.title for crash in found.crashes()} == {"kernel panic: sysrq triggered crash"}
    assert Aftermath({}, "").empty and not found.empty
    long = Aftermath({"/sys/fs/pstore/dmesg-ramoops-0": "x" * 9000 + SYSRQ_RECORD}, "y" * 9000)
    assert "Kernel Offset: disabled" in long.excerpt(8000) and len(long.excerpt(8000)) < 8100


def test_root_writes_files_whose_names_a_shell_would_split(sshd: Sshd, tmp_path: Path) -> None:
    target = tmp_path / "a dir" / "it's $HOME; true.txt"
    target.parent.mkdir()
    with connect(sshd.endpoint) as transport:
        root = Root(transport, user=sshd.endpoint.user, host="laptop")
        root.put(b"kernel\n", str(target), mode=0o600)
        listed = root.sh('ls -l -- "$1"', str(target)).stdout
    assert target.read_bytes() == b"kernel\n"
    assert listed.startswith("-rw-------")
    assert not list(target.parent.glob("*.farm-part"))
