# SPDX-License-Identifier: Apache-2.0
"""The web view's world: a store filled by a short real soak, `farm api` serving it,
and a headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

The soak is the real pipeline stepped without Celery, as tests/scheduler does: the
"host" is this machine behind a real sshd, the load runs detached over SSH and the
samples are the real /proc. The series is real mail: `git format-patch` of a small
tree, one subject hostile, read and applied by farm's intake. The host's console is a
serial log file (as a QEMU host's is) into which the test writes what a kernel would:
a real list-corruption oops from tests/fixtures/console, and a hostile line.

One soak per module (about a minute): a baseline of the base, the patched kernel
that crashes, the bisection that crash starts, and one bisect run that feeds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from intake.gitrepo import format_patch, make_repo
from netutil import free_port
from soakstack import SshHost, running_sshd, write_farm_toml

from farm.config import FarmConfig, load_config
from farm.git import git
from farm.hosts import get_host
from farm.scheduler import lifecycle
from farm.scheduler.api import queue_run
from farm.scheduler.bisecting import tick_bisections
from farm.scheduler.leases import bump_fence
from farm.scheduler.submit import intake
from farm.store import Store
from farm.store.runs import Run, RunKind, RunState
from farm.store.samples import RunProgress

CONSOLE_FIXTURE = Path(__file__).parents[1] / "fixtures" / "console" / "demo_list_corruption.log"
HOSTILE_SUBJECT = "mm: <script>document.title='pwned'</script><img src=x onerror=alert(1)> \x1b[2J"
HOSTILE_LINE = "[   42.000000] <script>alert('console')</script> \x1b[2J\x1b[31mred </pre><b>bold"
CRASH_TITLE = "BUG: corrupted list in deferred_split_scan"
READ_TOKEN = "web-read-token-0123456789abcdef"
ADMIN_TOKEN = "web-admin-token-0123456789abcdef"
FARM = Path(sys.executable).parent / "farm"


@dataclass(frozen=True)
class Soaked:
    url: str
    config: FarmConfig
    store: Store
    console: Path
    series: int
    baseline: int
    crashed: int
    bisect_run: int
    bisection: int


def _series_tree(base: Path) -> tuple[Path, Path]:
    """A tree and the real format-patch mails of its 5-patch series, patch 2 hostile."""
    upstream = base / "upstream"
    subjects = ["mm/thp: return 33", HOSTILE_SUBJECT, "lib: spell out seven",
                "mm/thp: zero 20", "mm/vmscan: fewer at 30"]  # fmt: skip
    make_repo(upstream, subjects)
    mails = format_patch(upstream, base / "outgoing")
    cover = mails[0]
    cover.write_text(
        cover.read_text()
        .replace("*** SUBJECT HERE ***", "mm: account deferred THP splits")
        .replace("*** BLURB HERE ***", "Split underused THPs and account for them.")
    )
    tree = base / "linux"
    git(base, "clone", "--quiet", str(upstream), str(tree))
    return tree, base / "outgoing"


def drive(
    config: FarmConfig,
    store: Store,
    run_id: int,
    until: RunState | None = None,
    timeout: float = 180,
) -> None:
    """Step a run as a worker would, sleeping the delays the steps ask for, to its end
    or until it reaches state ``until``."""
    ctx = lifecycle.Ctx(config, store, get_host(config, "laptop"), bump_fence(store, "laptop"))
    with store.session() as session:
        progress = session.get(RunProgress, run_id)
        tick = progress.tick if progress else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = lifecycle.advance(ctx, run_id, tick)
        if result is None or (until is not None and run_row(store, run_id).state == until):
            return
        tick, delay = result
        time.sleep(delay)
    raise AssertionError(f"run {run_id} did not finish in {timeout:.0f} s")


def _kernel_log(console: Path, lines: list[str]) -> None:
    with console.open("a") as out:
        out.write("".join(line + "\n" for line in lines))


def soak(base: Path, ssh: SshHost) -> tuple[FarmConfig, Store, Path, dict[str, int]]:
    console = base / "console.log"
    console.touch()
    toml = write_farm_toml(
        base / "farm.toml",
        ssh,
        extra="[bisect]\nstep_overhead_hours = 0.001\nmin_step_hours = 0.002\n"
        "max_step_hours = 0.002\nprior_scale_hours = 0.01\n",
        host_extra=f'[hosts.console]\nkind = "serial-file"\npath = "{console}"\n'
        '[hosts.health]\nchecks = true\nload = "idle-loop"\nseconds = 6\n',
    )
    config = load_config(toml)
    store = Store(config.db_url)
    tree, mails = _series_tree(base)
    submitted = intake(config, store, mails, tree=tree)
    assert submitted.series_id is not None and submitted.base is not None
    common = {"host": "laptop", "load": "idle-loop", "series_id": submitted.series_id,
              "application_id": submitted.application_id, "send": False,
              "details": {"kernel": "running"}}  # fmt: skip
    baseline = queue_run(config, store, kind=RunKind.BASELINE, commit=submitted.base,
                         soak_seconds=4, **common)  # fmt: skip
    drive(config, store, baseline)
    crashed = queue_run(config, store, kind=RunKind.PATCHED, commit=submitted.commits[5],
                        upto=5, soak_seconds=20, **common)  # fmt: skip
    drive(config, store, crashed, until=RunState.SOAKING)
    # While it soaks, the patched kernel oopses, and a hostile line follows.
    _kernel_log(console, [*CONSOLE_FIXTURE.read_text().splitlines(), HOSTILE_LINE])
    drive(config, store, crashed)
    [work] = tick_bisections(config, store)  # auto-requested, started: what it wants run
    # The bisect run the beat would queue; its kernel boots on a console that starts over.
    console.write_text("")
    test = work.queue[0]
    bisect_run = queue_run(
        config, store, kind=RunKind.BISECT, host=test.host, commit=test.commit, upto=test.upto,
        load=test.load, soak_seconds=test.soak_seconds, series_id=test.series_id,
        application_id=test.application_id, bisection_id=work.bisection_id,
        details={"kernel": "running"}, send=False,
    )  # fmt: skip
    drive(config, store, bisect_run, until=RunState.SOAKING)
    _kernel_log(console, ["[    0.000000] Linux version 6.1.0-farm (bisect run)"])
    drive(config, store, bisect_run)
    tick_bisections(config, store)  # takes in its evidence
    ids = {"series": submitted.series_id, "baseline": baseline, "crashed": crashed,
           "bisect_run": bisect_run, "bisection": work.bisection_id}  # fmt: skip
    return config, store, console, ids


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Soaked]:
    base = tmp_path_factory.mktemp("web")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("FARM_")}
    with running_sshd(base) as ssh:
        config, store, console, ids = soak(base, ssh)
        assert config.source is not None
        port = free_port()
        env = {**os.environ, "FARM_CONFIG": str(config.source), "FARM_API_TOKEN": READ_TOKEN,
               "FARM_API_ADMIN_TOKEN": ADMIN_TOKEN}  # fmt: skip
        log = (base / "api.log").open("wb")
        api = subprocess.Popen(
            [str(FARM), "api", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", api, base / "api.log")
            yield Soaked(f"http://127.0.0.1:{port}", config, store, console, **ids)
        finally:
            api.terminate()
            api.wait(timeout=10)
            log.close()
            store.dispose()
    os.environ.update(saved)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 120  # a loaded CI machine imports slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"farm api exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"farm api did not answer within 120 s:\n{log.read_text()}")


def run_row(store: Store, run_id: int) -> Run:
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run
