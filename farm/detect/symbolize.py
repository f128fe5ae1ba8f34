# SPDX-License-Identifier: Apache-2.0
"""Raw addresses in a kernel report to function+offset, and file:line with debug info.

A System.map (``nm -n`` format: ``address type name``) is enough to name the function
around an address; with a vmlinux carrying DWARF, ``addr2line`` adds the source line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from bisect import bisect_right
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path

from farm.detect.crash import Crash, parse
from farm.errors import InfraError, UserError

_MAP_LINE = re.compile(r"^([0-9a-fA-F]+) ([a-zA-Z]) (\S+)")
_TEXT_TYPES = frozenset("tTwW")
# "[<ffffffff81234567>]" trace entries, and bare kernel addresses after "RIP: 0010:".
_RAW_ADDR = re.compile(r"\[<([0-9a-f]{8,16})>\]|(?<=RIP: 0010:)([0-9a-f]{8,16})\b")
_SYMBOLIC = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_.]*)\+0x([0-9a-f]+)/0x([0-9a-f]+)")


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int

    def describe(self, address: int) -> str:
        return f"{self.name}+{address - self.address:#x}/{self.size:#x}"


class Symbolizer:
    """Names addresses from a System.map; adds file:line from a vmlinux when given."""

    def __init__(self, system_map: Path, vmlinux: Path | None = None) -> None:
        self._symbols = _read_system_map(system_map)
        self._starts = [s.address for s in self._symbols]
        self._by_name = {s.name: s for s in self._symbols}
        self._vmlinux = vmlinux
        if vmlinux is not None and not vmlinux.is_file():
            raise UserError(f"vmlinux not found: {vmlinux}", hint="pass the build's vmlinux")
        self._addr2line = shutil.which("addr2line") if vmlinux else None
        self._source_lines: dict[int, str | None] = {}  # a trace repeats its callers
        if vmlinux is not None and self._addr2line is None:
            raise InfraError("addr2line is missing", hint="apt-get install binutils")

    def lookup(self, address: int) -> Symbol | None:
        """The function containing `address`, or None outside the map's text."""
        index = bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        symbol = self._symbols[index]
        return symbol if address < symbol.address + symbol.size else None

    def source_line(self, address: int) -> str | None:
        """``path/file.c:123`` for `address`, when a vmlinux with debug info was given."""
        if self._addr2line is None or self._vmlinux is None:
            return None
        if address not in self._source_lines:
            self._source_lines[address] = self._addr2line_one(address)
        return self._source_lines[address]

    def _addr2line_one(self, address: int) -> str | None:
        assert self._addr2line is not None and self._vmlinux is not None
        try:
            result = subprocess.run(
                [self._addr2line, "-e", str(self._vmlinux), f"{address:#x}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InfraError(f"addr2line failed on {self._vmlinux}: {exc}") from exc
        location = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
        if result.returncode != 0 or not location or location.startswith("??"):
            return None
        return location.split(" (discriminator")[0]

    def symbolize(self, report: str) -> str:
        """The report with raw addresses named and symbolic frames given source lines."""
        return "\n".join(self._line(line) for line in report.split("\n"))

    def _line(self, line: str) -> str:
        def name_raw(match: re.Match[str]) -> str:
            address = int(match.group(1) or match.group(2), 16)
            symbol = self.lookup(address)
            if symbol is None:
                return match.group(0)
            where = self.source_line(address)
            named = symbol.describe(address) + (f" {where}" if where else "")
            return f"{match.group(0)} {named}" if match.group(1) else named

        line = _RAW_ADDR.sub(name_raw, line)
        if self._addr2line is None:
            return line

        def add_source(match: re.Match[str]) -> str:
            symbol = self._by_name.get(match.group(1))
            if symbol is None:
                return match.group(0)
            # Trace entries are return addresses: the call is the instruction before.
            where = self.source_line(symbol.address + max(int(match.group(2), 16) - 1, 0))
            return f"{match.group(0)} {where}" if where else match.group(0)

        return line if _RAW_ADDR.search(line) else _SYMBOLIC.sub(add_source, line)


def _read_system_map(path: Path) -> list[Symbol]:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read System.map {path}: {exc.strerror}") from exc
    entries = sorted(
        (int(m.group(1), 16), m.group(3), m.group(2) in _TEXT_TYPES)
        for m in map(_MAP_LINE.match, text.splitlines())
        if m is not None
    )
    if not entries:
        raise UserError(f"{path} holds no symbols", hint="pass the System.map of the build")
    # A function extends to the next symbol; only text symbols name code.
    symbols = []
    for (address, name, is_text), following in pairwise(entries):
        if is_text and following[0] > address:
            symbols.append(Symbol(name, address, following[0] - address))
    return symbols


def symbolize_crash(crash: Crash, symbolizer: Symbolizer) -> Crash:
    """The crash re-read from its symbolized report: frames named, the title with them."""
    report = symbolizer.symbolize(crash.report)
    if report == crash.report:
        return crash
    again = parse(report)
    if not again:
        return replace(crash, report=report)
    return replace(again[0], start_line=crash.start_line)
