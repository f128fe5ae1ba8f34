# SPDX-License-Identifier: Apache-2.0
"""The crash parser against real-world consoles (tests/fixtures/consoles), per category.

Each file's expected answer is in expected.toml (written before farm ran on it). Prints a
table: per category (clean logs, crashes by console format), how many files, first titles
right, crashes found (recall), false reports and reports flagged corrupted; --json for
scripts.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections import defaultdict
from pathlib import Path

from farm.detect.crash import Crash, parse

CONSOLES = Path(__file__).resolve().parents[1] / "tests/fixtures/consoles"


_FORMATS = (
    ("journal", "syslog/journal"),
    ("syslog", "syslog/journal"),
    ("dmesg -x", "dmesg -x"),
    ("dmesg -T", "dmesg -T"),
    ("<N>", "<N> levels"),
    ("serial", "raw serial"),
)


def console_format(entry: dict[str, str]) -> str:
    return next((name for key, name in _FORMATS if key in entry["format"]), "raw dmesg")


def categories(entry: dict[str, str]) -> list[str]:
    """The rows a file counts in: clean or crash by console format, crashes by arch too."""
    if not entry["title"]:
        return [f"clean, {console_format(entry)}"]
    return [f"crash, {console_format(entry)}", f"crash, arch {entry['arch']}"]


def measure() -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in tomllib.loads((CONSOLES / "expected.toml").read_text())["console"]:
        crashes = parse((CONSOLES / entry["file"]).read_bytes())
        for name in categories(entry):
            _count(table[name], entry, crashes)
    return {name: dict(row) for name, row in sorted(table.items())}


def _count(row: dict[str, int], entry: dict[str, str], crashes: list[Crash]) -> None:
    row["files"] += 1
    row["corrupted"] += sum(c.corrupted for c in crashes)
    if entry["title"]:
        row["found"] += bool(crashes)
        row["title_right"] += bool(crashes) and crashes[0].matches(entry["title"])
        row["first_corrupted"] += bool(crashes) and crashes[0].corrupted
    else:
        row["false_reports"] += len(crashes)
        row["files_with_false"] += bool(crashes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    table = measure()
    if args.json:
        print(json.dumps(table))
        return
    columns = ("files", "found", "title_right", "first_corrupted", "false_reports", "corrupted")
    print(f"{'category':26}" + "".join(f"{c:>16}" for c in columns))
    for name, row in table.items():
        print(f"{name:26}" + "".join(f"{row.get(c, 0):>16}" for c in columns))


if __name__ == "__main__":
    main()
