# SPDX-License-Identifier: Apache-2.0
"""A finished story in the store, built the way farm builds it: a real series
(``git format-patch`` of a small kernel-like repository) submitted through intake, its
patched run that crashed (the demo's real console log, scanned by the scheduler's
console code), the kernel's build with its .config, and a bisection whose evidence
names patch 03."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from intake.gitrepo import format_patch, make_repo

from farm.bisect.engine import Evidence, Outcome
from farm.build.kconfig import default_fragment
from farm.config import FarmConfig
from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.scheduler import bisect_store as persist
from farm.scheduler import console
from farm.scheduler.submit import IntakeResult, intake
from farm.store import Store
from farm.store.base import utcnow
from farm.store.builds import Build, BuildState
from farm.store.runs import Run, RunKind, RunState
from farm.store.series import Patch, Series

CONSOLE = Path(__file__).parents[1] / "fixtures" / "console" / "demo_list_corruption.log"
TITLE = "BUG: corrupted list in deferred_split_scan"
CULPRIT = 3
LIST = "linux-mm@kvack.org"
REVIEWER = "Rev Iewer <rev@example.org>"


@dataclass(frozen=True)
class Story:
    repo: Path
    base: str
    commits: dict[int, str]
    series_id: int
    bisection_id: int
    message_ids: dict[int, str]
    cover: str
    crash_report: str
    config: str
    run_id: int


def compiler_line() -> str:
    """What Kconfig records as CONFIG_CC_VERSION_TEXT: the compiler's first line."""
    gcc = shutil.which("gcc") or "cc"
    return subprocess.run(
        [gcc, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]


def kernel_config() -> str:
    return (
        "#\n# Automatically generated file; DO NOT EDIT.\n#\n"
        f'CONFIG_CC_VERSION_TEXT="{compiler_line()}"\nCONFIG_CC_IS_GCC=y\n'
        + default_fragment().read_text()
    )


def submitted(config: FarmConfig, store: Store, tmp_path: Path) -> tuple[Path, str, IntakeResult]:
    repo = tmp_path / "linux"
    base, _ = make_repo(repo)
    out = tmp_path / "outgoing"
    format_patch(repo, out, f"--to={LIST}", f"--cc={REVIEWER}")
    return repo, base, intake(config, store, out, tree=repo)


def failing_story(
    config: FarmConfig, store: Store, tmp_path: Path, console_log: Path = CONSOLE
) -> Story:
    repo, base, result = submitted(config, store, tmp_path)
    n = len(result.selected)
    kconfig = kernel_config()
    build_dir = config.data_dir / "builds" / f"{result.commits[n][:12]}-00000000"
    build_dir.mkdir(parents=True)
    (build_dir / ".config").write_text(kconfig)
    with store.session() as s:
        s.add(
            Build(
                commit=result.commits[n],
                config_hash="0" * 64,
                state=BuildState.OK,
                artifacts_dir=str(build_dir),
                release="6.1.0-farm+",
            )
        )
        run = Run(
            kind=RunKind.PATCHED,
            series_id=result.series_id,
            application_id=result.application_id,
            upto=n,
            commit=result.commits[n],
            host="laptop",
            load="thp-split",
            soak_seconds=3600,
            state=RunState.DONE,
            verdict=Verdict.FAIL,
            kernel_release="6.1.0-farm+",
            ending=RunEnding(
                findings=[Finding(cause=Cause.CRASH, text=f"crash: {TITLE}", title=TITLE)]
            ),
            ended_at=utcnow(),
        )
        s.add(run)
        s.flush()
        console.store_lines(
            s, run_id=run.id, host="laptop", lines=console_log.read_text().splitlines()
        )
        s.flush()
        [crash], _ = console.scan(s, run_id=run.id, host="laptop", scan_from=0)
        assert crash.title == TITLE
        b = persist.start(s, run_id=run.id, patches=n, regression=TITLE, series_id=result.series_id)
        evidence = [(n, "laptop", 1.0, Outcome.MATCHING), (n, "workstation", 2.0, Outcome.MATCHING)]
        evidence += [
            (CULPRIT, "laptop", 1.5, Outcome.MATCHING),
            (CULPRIT, "workstation", 1.2, Outcome.MATCHING),
        ]
        evidence += [(CULPRIT + 1, "laptop", 1.0, Outcome.MATCHING)]
        evidence += [(CULPRIT - 1, h, 40.0, Outcome.CLEAN) for h in ("laptop", "workstation") * 2]
        for i, (k, host, hours, outcome) in enumerate(evidence):
            persist.record(s, b, Evidence(k, host, f"boot{i}", hours, outcome, run_id=None))
        patches = s.query(Patch).filter(Patch.series_id == result.series_id).all()
        ids = {p.index: p.message_id or "" for p in patches}
        story = Story(
            repo=repo,
            base=base,
            commits=result.commits,
            series_id=result.series_id,
            bisection_id=b.id,
            message_ids=ids,
            cover=(s.get(Series, result.series_id).cover_message_id or "").strip(),  # type: ignore[union-attr]
            crash_report=crash.report,
            config=kconfig,
            run_id=run.id,
        )
    return story


def passing_story(config: FarmConfig, store: Store, tmp_path: Path) -> tuple[int, list[int]]:
    """The same series soaked on two hosts for 12 hours each, both PASS."""
    _, _, result = submitted(config, store, tmp_path)
    n = len(result.selected)
    ids = []
    with store.session() as s:
        for host in ("laptop", "workstation"):
            run = Run(
                kind=RunKind.PATCHED,
                series_id=result.series_id,
                application_id=result.application_id,
                upto=n,
                commit=result.commits[n],
                host=host,
                load="thp-split",
                soak_seconds=12 * 3600,
                state=RunState.DONE,
                verdict=Verdict.PASS,
                kernel_release="6.1.0-farm+",
                boot_id=f"{host}-boot-0123456789",
            )
            s.add(run)
            s.flush()
            run.load_started_at = run.created_at
            run.ended_at = run.created_at + dt.timedelta(hours=12)
            ids.append(run.id)
    assert result.series_id is not None
    return result.series_id, ids
