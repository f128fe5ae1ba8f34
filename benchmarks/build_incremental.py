#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How much an incremental kernel build costs next to a clean one, and how fast it boots.

1. a clean build of linux-source 6.1 with jobs/kconfig/soak.config, from a cold private
   cache (fresh worktree, output directory and ccache);
2. the rebuild after one more commit that touches one mm/ file, in the same output dir;
3. a QEMU host (farm.hosts, -accel tcg) booting that kernel until SSH answers.

Build figures are the builder's own durations (configure + make + collect; the one-time
worktree checkout is not counted). Target: incremental <= 15% of clean.
Usage: .venv/bin/python benchmarks/build_incremental.py [--json] [--no-boot]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from farm.build import KernelArtifacts, build_kernel, ensure_linux_tree
from farm.build.tree import BASE_TAG, commit_edit, farm_cache_dir


def boot_to_ssh(kernel: KernelArtifacts, data_dir: Path) -> float:
    """Seconds from starting a QEMU host with ``kernel`` until its SSH answers."""
    from farm.config import FarmConfig, HostConfig
    from farm.hosts import get_host

    config = FarmConfig(data_dir=data_dir, hosts=[HostConfig(name="bench", kind="qemu")])
    host = get_host(config, "bench")
    started = time.monotonic()
    try:
        host.boot(kernel)
        return time.monotonic() - started
    finally:
        host.power.off()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-boot", action="store_true", help="skip the QEMU boot")
    args = parser.parse_args()
    say = (lambda msg: print(msg, file=sys.stderr)) if args.json else print

    tree = ensure_linux_tree(progress=say)
    # Private and cold (fresh worktree, output dir and ccache), beside the real cache.
    with tempfile.TemporaryDirectory(prefix="bench-", dir=farm_cache_dir()) as tmp:
        root = Path(tmp)
        data, cache = root / "data", root / "cache"
        clean = build_kernel(tree, BASE_TAG, data_dir=data, cache_dir=cache, progress=say)
        edit = f"\nint farm_bench_marker = {time.time_ns() % 1000};\n"
        commit = commit_edit(tree, "mm/swap.c", edit, "mm: bench")
        patched = build_kernel(tree, commit, data_dir=data, cache_dir=cache, progress=say)
        assert patched.incremental and not clean.incremental
        boot = None if args.no_boot else boot_to_ssh(patched, root / "hosts")

    figures = {
        "clean_seconds": clean.duration_seconds,
        "incremental_seconds": patched.duration_seconds,
        "boot_to_ssh_seconds": None if boot is None else round(boot, 2),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        ratio = patched.duration_seconds / clean.duration_seconds
        print(f"clean build        {clean.duration_seconds:8.1f} s")
        print(f"incremental build  {patched.duration_seconds:8.1f} s  ({ratio:.1%} of clean)")
        print(f"boot to SSH        {'skipped' if boot is None else f'{boot:8.1f} s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
