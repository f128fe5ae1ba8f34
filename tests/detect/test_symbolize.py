# SPDX-License-Identifier: Apache-2.0
"""Symbolising raw addresses with a System.map made by nm from a real ELF (with DWARF)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from farm.detect.crash import parse
from farm.detect.symbolize import Symbolizer, symbolize_crash
from farm.errors import UserError

SOURCE = """\
int counter;
__attribute__((noinline)) int do_shrink_slab(int n) { counter += n; return counter; }
__attribute__((noinline)) int deferred_split_scan(int n) {
    return do_shrink_slab(n) + 1;
}
int main(void) { return deferred_split_scan(2); }
"""

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc and binutils")


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    """A debug-info executable, its `nm -n` System.map, and its symbol addresses."""
    work = tmp_path_factory.mktemp("elf")
    (work / "shrink.c").write_text(SOURCE)
    binary = work / "vmlinux"
    subprocess.run(
        ["gcc", "-g", "-O0", "-no-pie", "-o", str(binary), str(work / "shrink.c")], check=True
    )
    system_map = work / "System.map"
    nm = subprocess.run(["nm", "-n", str(binary)], check=True, capture_output=True, text=True)
    system_map.write_text(nm.stdout)
    addresses = {
        parts[2]: int(parts[0], 16)
        for parts in (line.split() for line in nm.stdout.splitlines())
        if len(parts) == 3
    }
    return binary, system_map, addresses


def test_raw_trace_addresses_become_function_plus_offset(
    elf: tuple[Path, Path, dict[str, int]],
) -> None:
    _, system_map, addr = elf
    symbolizer = Symbolizer(system_map)
    line = f" [<{addr['do_shrink_slab'] + 4:016x}>] "
    out = symbolizer.symbolize(line)
    assert f"do_shrink_slab+0x4/0x{addr['deferred_split_scan'] - addr['do_shrink_slab']:x}" in out
    assert symbolizer.lookup(0x10) is None


def test_vmlinux_debug_info_adds_file_and_line(elf: tuple[Path, Path, dict[str, int]]) -> None:
    binary, system_map, addr = elf
    symbolizer = Symbolizer(system_map, binary)
    out = symbolizer.symbolize(f"RIP: 0010:{addr['deferred_split_scan'] + 8:016x}")
    assert "deferred_split_scan+0x8/" in out
    assert "shrink.c:3" in out or "shrink.c:4" in out


def test_a_raw_address_report_gets_its_title_after_symbolising(
    elf: tuple[Path, Path, dict[str, int]],
) -> None:
    _, system_map, addr = elf
    report = (
        "kernel BUG at lib/list_debug.c:62!\n"
        "invalid opcode: 0000 [#1] SMP\n"
        "Call Trace:\n"
        f" [<{addr['deferred_split_scan'] + 9:016x}>]\n"
        f" [<{addr['main'] + 5:016x}>]\n"
    )
    [raw] = parse(report)
    assert raw.title == "BUG: corrupted list in corrupted"  # no names, no culprit
    named = symbolize_crash(raw, Symbolizer(system_map))
    assert named.title == "BUG: corrupted list in deferred_split_scan"
    assert named.start_line == raw.start_line


def test_a_map_without_symbols_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "System.map"
    empty.write_text("not a map\n")
    with pytest.raises(UserError, match="holds no symbols"):
        Symbolizer(empty)
