# SPDX-License-Identifier: Apache-2.0
"""The kernel's own selftests, built from the tree under test.

A load that names ``selftests`` (farm.loads.Selftests) runs programs of
tools/testing/selftests/<target> built from the very commit its kernel was built from:
in the tree's persistent worktree (farm.build.builder), under the same lock and in the
same sandbox, ``make headers`` into an output directory of their own, then the
selftests' Makefile with those headers (KHDR_INCLUDES, so a patch's new uapi is what
they see) and ``-static``, so the host needs neither compiler nor libraries. Only the
programs the load names are built (the Makefile's ``make /full/path`` mode): the
others may need libraries (libcap, libnuma) that farm does not ask for.

The programs land in ``<data_dir>/selftests/<commit[:12]>-<digest>/`` beside
build.log and metadata.json, assembled under a temporary name and renamed: another run
of the same commit and list reuses them. A program that does not compile is the tree's
fault (KernelError, the run's FAIL verdict with the compiler's error); a library or
tool missing on the controller is ours (InfraError naming it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from farm.build.builder import (
    Progress,
    _checkout,
    _confine,
    _Make,
    _make_env,
    _MakeFailed,
    _tree_key,
)
from farm.build.failures import check_toolchain, classify
from farm.build.sandbox import Sandbox, default_sandbox
from farm.build.tree import farm_cache_dir, file_lock
from farm.errors import InfraError
from farm.git import resolve

# tools/testing/selftests/mm was tools/testing/selftests/vm before Linux 6.3.
FORMER_NAMES = {"mm": "vm"}
_RECIPE = 1  # bump when the way the programs are built changes: old builds are not reused


def selftests_dir(data_dir: Path, commit: str, target: str, programs: list[str]) -> Path:
    key = json.dumps([_RECIPE, target, sorted(programs)]).encode()
    return data_dir / "selftests" / f"{commit[:12]}-{hashlib.sha256(key).hexdigest()[:8]}"


def target_dir(src: Path, target: str) -> Path:
    """The target's directory in ``src``, under its current name or its former one."""
    base = src / "tools" / "testing" / "selftests"
    for name in (target, FORMER_NAMES.get(target)):
        if name and (base / name / "Makefile").is_file():
            return base / name
    raise InfraError(f"{src.name} has no selftests {target!r} (no {base / target}/Makefile)")


def build_selftests(
    tree: Path,
    commit: str,
    *,
    data_dir: Path,
    target: str,
    programs: list[str],
    cache_dir: Path | None = None,
    sandbox: Sandbox | None = None,
    progress: Progress | None = None,
) -> Path:
    """The directory holding ``programs`` of selftests ``target`` built static from
    ``commit`` of ``tree`` (reused when built before)."""
    say = progress or (lambda _msg: None)
    sha = resolve(tree, commit)
    final = selftests_dir(data_dir, sha, target, programs)
    if (final / "metadata.json").is_file():
        return final
    cache = cache_dir or farm_cache_dir()
    with file_lock(cache / "build" / f"{_tree_key(tree)}.lock"):
        if (final / "metadata.json").is_file():
            return final
        work = cache / "build" / _tree_key(tree)
        env = _make_env(cache, work)
        check_toolchain(env)
        src = _checkout(tree, sha, work / "src", say)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            _build(src, work / "selftests-out", target, programs, env, sandbox or
                   default_sandbox(data_dir), staging, say)  # fmt: skip
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _build(
    src: Path,
    out: Path,
    target: str,
    programs: list[str],
    env: dict[str, str],
    sandbox: Sandbox,
    staging: Path,
    say: Progress,
) -> None:
    directory = target_dir(src, target)
    binaries = out / "kselftest" / directory.name
    shutil.rmtree(binaries, ignore_errors=True)  # never a program built on older headers
    binaries.mkdir(parents=True)
    jail = _confine(sandbox, src, out, Path(env["CCACHE_DIR"]), env, say)
    jobs = os.cpu_count() or 1
    started = time.monotonic()
    say(f"building selftests {directory.name}: {' '.join(programs)}")
    with (staging / "build.log").open("w", buffering=1) as log:
        headers = _Make(src, out, env, jail, "farm-selftests", log)
        tests = _Make(directory, out, env, jail, "farm-selftests", log)
        variables = [
            f"OUTPUT={binaries}",
            f"KHDR_INCLUDES=-isystem {out / 'usr' / 'include'}",
            "LDFLAGS=-static",
        ]
        try:
            headers(["headers"], jobs)
            tests([*variables, *(str(binaries / p) for p in programs)], jobs)
        except _MakeFailed as exc:
            failure = classify(tests.lines or headers.lines, exc.returncode, src, directory)
            failed_log = staging.parent / f"{staging.name.split('.')[1]}-failed.log"
            shutil.copy2(staging / "build.log", failed_log)  # staging goes; the log stays
            message = f"selftests {directory.name}: {failure.message}"
            raise replace(failure, message=message).error(hint=f"less {failed_log}") from exc
    for program in programs:
        shutil.copy2(binaries / program, staging / program)
    meta = {
        "target": directory.name,
        "programs": programs,
        "command": tests.command_line([*variables, *programs], jobs),
        "duration_seconds": round(time.monotonic() - started, 2),
    }
    (staging / "metadata.json").write_text(json.dumps(meta, indent=1) + "\n")
    say(f"built {len(programs)} selftests of {directory.name} in {meta['duration_seconds']:.0f}s")
