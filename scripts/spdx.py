#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Give every Python file of farm its SPDX licence header; running it twice changes nothing.

The header is the file's first line, or its second after a ``#!`` line. Without paths it
covers the folders tests/test_licence.py checks: farm, tests, benchmarks, examples.

    scripts/spdx.py [--check] [PATH ...]

``--check`` only lists the files without the header, and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

HEADER = "# SPDX-License-Identifier: Apache-2.0"
ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("farm", "tests", "benchmarks", "examples")


def has_header(text: str) -> bool:
    lines = text.splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return bool(lines) and lines[0].rstrip() == HEADER


def with_header(text: str) -> str:
    """``text`` with the header put in, after a ``#!`` line if there is one."""
    if has_header(text):
        return text
    if text.startswith("#!"):
        shebang, _, rest = text.partition("\n")
        return f"{shebang}\n{HEADER}\n{rest}"
    return f"{HEADER}\n{text}"


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if p.is_file())
        elif path.suffix == ".py":
            yield path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list files without the header")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders")
    args = parser.parse_args(argv)
    paths = args.paths or [ROOT / folder for folder in FOLDERS]
    missing = []
    for path in python_files(paths):
        with path.open(encoding="utf-8", newline="") as file:  # keeps line endings as they are
            text = file.read()
        if has_header(text):
            continue
        missing.append(path)
        if not args.check:
            with path.open("w", encoding="utf-8", newline="") as file:
                file.write(with_header(text))
    for path in missing:
        print(f"{'missing' if args.check else 'added'}: {path}")
    return 1 if args.check and missing else 0


if __name__ == "__main__":
    sys.exit(main())
