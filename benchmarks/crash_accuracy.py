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

from farm.detect.crash import parse

CONSOLES = Path(__file__).resolve().parents[1] / "tests/fixtures/consoles"


def category(entry: dict[str, str]) -> str:
    if not entry["title"]:
        return "clean: journal/syslog" if "journal" in entry["format"] else "clean: dmesg/serial"
    return f"crash: {entry['arch']}"


def measure() -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in tomllib.loads((CONSOLES / "expected.toml").read_text())["console"]:
        crashes = parse((CONSOLES / entry["file"]).read_bytes())
        row = table[category(entry)]
        row["files"] += 1
        row["corrupted"] += sum(c.corrupted for c in crashes)
        if entry["title"]:
            row["found"] += bool(crashes)
            row["title_right"] += bool(crashes) and crashes[0].matches(entry["title"])
        else:
            row["false_reports"] += len(crashes)
    return {name: dict(row) for name, row in sorted(table.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    table = measure()
    if args.json:
        print(json.dumps(table))
        return
    columns = ("files", "found", "title_right", "false_reports", "corrupted")
    print(f"{'category':24}" + "".join(f"{c:>14}" for c in columns))
    for name, row in table.items():
        print(f"{name:24}" + "".join(f"{row.get(c, 0):>14}" for c in columns))


if __name__ == "__main__":
    main()
