# SPDX-License-Identifier: Apache-2.0
"""The load on the host: started detached, once, findable by run id.

``<remote_dir>/run-<id>/`` holds the script, its environment, helper binaries (bin/),
selftest programs (selftests/), the pid, the output and the exit status. The start is
guarded by ``mkdir started``, which succeeds exactly once on a host, so a task retried
after a worker died finds the running load instead of starting another. Every real
start appends a line to ``<remote_dir>/starts.log``: the evidence that a load was
started once.
The load runs under ``setsid`` with all stdio redirected, in its own session, so
neither a dropped SSH connection nor a controller restart stops it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farm.errors import InfraError
from farm.hosts.base import Transport
from farm.loads import WORKERS_DIR, Load


@dataclass(frozen=True)
class Started:
    pid: int
    fresh: bool  # False: an earlier attempt had started it and it was found


def run_dir(remote_dir: str, run_id: int) -> str:
    return f"{remote_dir}/run-{int(run_id)}"


def compile_binary(name: str, cache_dir: Path) -> Path:
    """A static build of workers/loads/<name>.c, cached by source hash."""
    source = WORKERS_DIR / f"{name}.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{name}-{digest}"
    if target.is_file():
        return target
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise InfraError("no C compiler on the controller to build load helpers", hint="make apt")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Workers build concurrently: each into its own file, then an atomic rename.
    tmp = target.with_suffix(f".{os.getpid()}.part")
    proc = subprocess.run(
        [compiler, "-static", "-O2", "-Wall", "-o", str(tmp), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InfraError(f"cannot compile {source}: {proc.stderr.strip()[-1000:]}")
    tmp.replace(target)
    return target


def _env_file(run_id: int, seconds: float, directory: str) -> bytes:
    return (
        f"FARM_RUN_ID={int(run_id)}\nFARM_SECONDS={max(1, int(seconds))}\n"
        f"FARM_DIR={shlex.quote(directory)}\n"
        "FARM_MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)\n"
        "export FARM_RUN_ID FARM_SECONDS FARM_DIR FARM_MEM_KB\n"
    ).encode()


def start(
    transport: Transport,
    *,
    load: Load,
    run_id: int,
    seconds: float,
    remote_dir: str,
    cache_dir: Path,
    selftests: Path | None = None,
) -> Started:
    """Start ``load`` for ``seconds`` unless this run's load was started before.
    ``selftests``: the load's selftest programs built from the tree under test
    (farm.build.selftests), shipped to ``$FARM_DIR/selftests/``."""
    d = run_dir(remote_dir, run_id)
    if load.selftests is not None and selftests is None:
        raise InfraError(f"load {load.name} runs selftests, and none were built for this run")
    check_requirements(transport, load)
    transport.run(["mkdir", "-p", f"{d}/bin", f"{d}/selftests"])
    found = _existing(transport, d)
    if found is not None:
        return Started(found, fresh=False)
    for name in load.binaries:
        transport.put(compile_binary(name, cache_dir).read_bytes(), f"{d}/bin/{name}", mode=0o755)
    if load.selftests is not None and selftests is not None:
        for name in load.selftests.programs:
            transport.put((selftests / name).read_bytes(), f"{d}/selftests/{name}", mode=0o755)
    transport.put(_env_file(run_id, seconds, d), f"{d}/env.sh")
    transport.put(f". {d}/env.sh\n{load.script}".encode(), f"{d}/load.sh", mode=0o755)
    result = transport.run(
        f"cd {d} && if mkdir started 2>/dev/null; then "
        f"setsid sh -c 'sh ./load.sh > out.log 2>&1; echo $? > exit' "
        f"< /dev/null > /dev/null 2>&1 & echo $! > pid; "
        f'echo "run-{int(run_id)} $(date +%s) $(cat pid)" >> {remote_dir}/starts.log; '
        f"echo fresh $(cat pid); else sleep 1; echo found $(cat pid); fi"
    )
    word, _, pid = result.stdout.strip().partition(" ")
    if not pid.isdigit():
        raise InfraError(f"load start on the host printed {result.stdout!r}")
    return Started(int(pid), fresh=word == "fresh")


def check_requirements(transport: Transport, load: Load) -> None:
    """Every requirement of ``load`` in one round trip; the first missing one is an
    InfraError saying what to install (a load never falls back to something else)."""
    if not load.requires:
        return
    script = "; ".join(f"{r.shell_test()} || echo {i}" for i, r in enumerate(load.requires))
    missing = [int(i) for i in transport.run(["sh", "-c", script]).stdout.split() if i.isdigit()]
    if missing:
        raise InfraError("; ".join(load.requires[i].missing(load.name) for i in missing))


def _existing(transport: Transport, d: str) -> int | None:
    out = transport.run(f"[ -d {d}/started ] && cat {d}/pid || true").stdout.strip()
    return int(out) if out.isdigit() else None


def stop(transport: Transport, *, run_id: int, remote_dir: str) -> None:
    """Stop the load's whole session (idempotent: a stopped load stays stopped)."""
    d = run_dir(remote_dir, run_id)
    transport.run(
        f"if [ -f {d}/pid ] && [ ! -e {d}/stopped ]; then p=$(cat {d}/pid); "
        f"kill -TERM -$p 2>/dev/null; sleep 1; kill -KILL -$p 2>/dev/null; "
        f"touch {d}/stopped; fi; true"
    )


def quiesce(transport: Transport, load: Load, *, timeout: float) -> None:
    for step in load.quiesce:
        transport.run(step, timeout=timeout, check=False)


def starts_log(transport: Transport, remote_dir: str) -> list[str]:
    """Lines of the host's start log: one per load ever started there."""
    out = transport.run(f"cat {remote_dir}/starts.log 2>/dev/null || true").stdout
    return [line for line in out.splitlines() if line.strip()]
