# SPDX-License-Identifier: Apache-2.0
"""Real processes that start the same work at the same moment, for tests of races.

Each process first runs ``prepare`` (imports, setup: the slow part, which differs from
process to process), says it is ready and waits; once all are ready they are released
together into ``act``. Without the barrier, interpreter start-up spreads them apart
and a race is seldom hit. ``act`` may read its process's number (0, 1, ...) from
``$TOGETHER_INDEX``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_BARRIER = """
import os as _os, pathlib as _pathlib, time as _time
_pathlib.Path(_os.environ["TOGETHER_READY"]).touch()
while not _pathlib.Path(_os.environ["TOGETHER_GO"]).exists():
    _time.sleep(0.001)
"""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def together(
    prepare: str, act: str, count: int, workdir: Path, env: dict[str, str] | None = None
) -> list[Finished]:
    """Run ``prepare``, then ``act`` released at once, in ``count`` Python processes."""
    workdir.mkdir(parents=True, exist_ok=True)
    go = workdir / "go"
    code = f"{prepare}\n{_BARRIER}\n{act}\n"
    procs = []
    for n in range(count):
        ready = workdir / f"ready-{n}"
        extra = {"TOGETHER_READY": str(ready), "TOGETHER_GO": str(go), "TOGETHER_INDEX": str(n)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**(env or os.environ), **extra},
            )
        )
    deadline = time.monotonic() + 120
    while not all((workdir / f"ready-{n}").exists() for n in range(count)):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            break  # one died while preparing: its error is in its stderr
        time.sleep(0.01)
    go.touch()
    finished = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        finished.append(Finished(proc.returncode, out, err))
    return finished
