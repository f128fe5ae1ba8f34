# SPDX-License-Identifier: Apache-2.0
"""How long intake takes to apply a 28-patch series to a large tree.

Uses the Linux tree of farm.build (linux-source 6.1, ~80k files) when it can be had,
else a generated repository of 20k files (``--generated`` forces that). The series is
made with real ``git format-patch --cover-letter --thread`` from 28 commits that each
edit one file under mm/, then applied with the same ``intake()`` ``farm submit`` calls:
worktree checkout + ``git am -3`` + patch-ids + the database transaction.

    .venv/bin/python benchmarks/apply_series.py [--patches 28] [--generated] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from farm.config import FarmConfig
from farm.errors import FarmError
from farm.git import git
from farm.intake.apply import Worktree, apply_patches, patch_ids
from farm.intake.mbox import read_mails
from farm.intake.series import group_series
from farm.scheduler.submit import intake
from farm.store import Store


def large_tree(generated: bool, tmp: Path) -> tuple[Path, str]:
    if not generated:
        try:
            from farm.build.tree import ensure_linux_tree

            return ensure_linux_tree(progress=print), "linux-source-6.1"
        except (ImportError, FarmError) as exc:
            print(f"no Linux tree ({exc}); using a generated one")
    repo = tmp / "generated"
    git(tmp, "init", "--quiet", str(repo))
    stream = [
        "commit refs/heads/master\ncommitter B <b@example.org> 1700000000 +0000\ndata 4\nbase\n"
    ]
    for n in range(20000):
        body = "".join(f"/* line {i} of file {n} */\n" for i in range(60))
        stream.append(f"M 100644 inline mm/d{n // 100}/f{n}.c\ndata {len(body)}\n{body}\n")
    git(repo, "fast-import", "--quiet", input="".join(stream).encode())
    return repo, "generated-20k-files"


def make_series(source: Path, tmp: Path, patches: int) -> tuple[Path, Path, str]:
    """A --shared clone of the tree (the user's repo) and a series against its HEAD."""
    repo = tmp / "linux"
    git(tmp, "clone", "--quiet", "--shared", "--no-checkout", str(source), str(repo))
    base = git(repo, "rev-parse", "HEAD").strip()
    listed = git(repo, "ls-tree", "-r", "--name-only", base, "--", "mm").split()
    files = [f for f in listed if f.endswith(".c")][:patches]
    stream = []
    for n, path in enumerate(files, 1):
        lines = git(repo, "show", f"{base}:{path}").splitlines(keepends=True)
        lines.insert(len(lines) // 2, f"/* farm benchmark change {n} */\n")
        body = "".join(lines).encode()
        message = f"mm: benchmark change {n} in {path}\n".encode()
        stream.append(
            f"commit refs/heads/series\ncommitter B <b@example.org> {1700000000 + n} +0000\n"
            f"data {len(message)}\n".encode()
            + message
            + (f"from {base}\n".encode() if n == 1 else b"")
            + f"M 100644 inline {path}\ndata {len(body)}\n".encode()
            + body
            + b"\n"
        )
    git(repo, "fast-import", "--quiet", "--force", input=b"".join(stream))
    out = tmp / "out"
    git(
        repo,
        "format-patch",
        "--quiet",
        "--cover-letter",
        "--thread",
        f"--base={base}",
        "-o",
        str(out),
        f"{base}..series",
    )
    return repo, out, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=28)
    parser.add_argument("--generated", action="store_true", help="skip the Linux tree")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farm-intake-bench-") as tmp_name:
        tmp = Path(tmp_name)
        source, kind = large_tree(args.generated, tmp)
        repo, series_dir, base = make_series(source, tmp, args.patches)
        files = int(git(repo, "ls-tree", "-r", "--name-only", base).count("\n"))
        timings: dict[str, float] = {}

        def timed(name: str, start: float) -> float:
            now = time.perf_counter()
            timings[name] = round(now - start, 3)
            return now

        t = time.perf_counter()
        series = group_series(read_mails(series_dir))
        t = timed("parse_seconds", t)
        patch_ids(repo, series.patches)
        t = timed("patch_id_seconds", t)
        probe = Worktree(repo, tmp / "probe", "farm/bench-probe")
        apply_patches(probe, base, series.patches)
        t = timed("worktree_and_am_seconds", t)
        probe.remove()
        config = FarmConfig(data_dir=tmp / "data", hosts=[])
        store = Store(config.db_url)
        t = time.perf_counter()
        result = intake(config, store, series_dir, tree=repo)
        timed("intake_total_seconds", t)
        store.dispose()
        figures = {"tree": kind, "tree_files": files, "patches": len(result.commits), **timings}
        report(figures, args.json)  # before removing the checkouts, which takes a while


def report(figures: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures, indent=2), flush=True)
        return
    print(f"apply series: {figures['patches']} patches onto {figures['tree']}", end="")
    print(f" ({figures['tree_files']} files)")
    for key, value in figures.items():
        if key.endswith("_seconds"):
            print(f"  {key.removesuffix('_seconds'):22s} {value:8.2f} s", flush=True)


if __name__ == "__main__":
    main()
