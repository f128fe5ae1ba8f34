#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How long a kernel reduced from a real machine's config takes to build here.

A kernel developer's host config: Debian 12's own kernel config (from the linux-image
package that the disk-VM tests install, or --config FILE), reduced with ``make
localmodconfig`` against the lsmod of that Debian kernel running in the disk VM
(benchmarks/data/lsmod-debian12-diskvm.txt, or --lsmod FILE), the soak fragment merged
(farm.build.kconfig.configure_host), then:

1. a clean build (``bzImage modules``, ccache off, fresh output directory);
2. the rebuild after touching one mm/ file.

Prints the options count, modules count and both durations. Nothing is cached: this is
the cost a CI run would pay for the disk-VM localmodconfig test.
Usage: .venv/bin/python benchmarks/build_localmodconfig.py [--json] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm.build import ensure_linux_tree
from farm.build.kconfig import configure_host, default_fragment, parse_config, read_fragment
from farm.build.tree import BASE_TAG, farm_cache_dir
from farm.git import git

LSMOD = Path(__file__).with_name("data") / "lsmod-debian12-diskvm.txt"


def debian_config() -> str:
    """/boot/config-* of the newest linux-image package in the disk-VM's package cache."""
    debs = sorted((farm_cache_dir() / "diskvm-debs").glob("linux-image-6.*-amd64_*.deb"))
    if not debs:
        sys.exit("no linux-image .deb in the diskvm cache: run tests/hosts/diskvm.py prepare")
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], capture_output=True,
                         check=True).stdout  # fmt: skip
    listing = subprocess.run(["tar", "-t"], input=tar, capture_output=True, check=True).stdout
    member = next(n for n in listing.decode().split() if "/boot/config-" in n)
    return subprocess.run(["tar", "-xO", member], input=tar, capture_output=True,
                          check=True).stdout.decode()  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="a full .config (default: Debian 12's)")
    parser.add_argument("--lsmod", type=Path, default=LSMOD)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    host_config = args.config.read_text() if args.config else debian_config()
    tree = ensure_linux_tree(progress=print)
    env = {**os.environ, "CCACHE_DISABLE": "1", "LC_ALL": "C"}
    with tempfile.TemporaryDirectory(prefix="farm-bench-lmc-", dir=farm_cache_dir()) as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        git(tree, "worktree", "add", "-q", "--detach", str(src), BASE_TAG, timeout=1800)
        out.mkdir()
        try:

            def make(targets: list[str], jobs: int = 1) -> None:
                subprocess.run(
                    ["nice", "-n", "10", "make", "-C", str(src), f"O={out}", f"-j{jobs}",
                     "LOCALVERSION=-farm-bench", *targets],
                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True,
                )  # fmt: skip

            fragment = read_fragment(default_fragment())
            configure_host(out, src, host_config, args.lsmod.read_text(), fragment, make)
            config = parse_config((out / ".config").read_text())
            started = time.monotonic()
            make(["bzImage", "modules"], args.jobs)
            clean = time.monotonic() - started
            (src / "mm" / "swap_state.c").write_text(
                (src / "mm" / "swap_state.c").read_text() + "\n/* bench */\n"
            )
            started = time.monotonic()
            make(["bzImage", "modules"], args.jobs)
            incremental = time.monotonic() - started
        finally:
            git(tree, "worktree", "remove", "--force", str(src))
    figures = {
        "options_y": sum(v == "y" for v in config.values()),
        "modules_m": sum(v == "m" for v in config.values()),
        "jobs": args.jobs,
        "clean_seconds": round(clean, 1),
        "incremental_seconds": round(incremental, 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
