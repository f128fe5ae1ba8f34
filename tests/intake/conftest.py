# SPDX-License-Identifier: Apache-2.0
"""Fixtures for intake: a real git tree to apply to, the fixture mboxes, the farm CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm.cli import main
from farm.git import git

from .gitrepo import format_patch, make_repo

MBOXES = Path(__file__).parents[1] / "fixtures" / "intake"


@dataclass(frozen=True)
class Upstream:
    repo: Path
    base: str
    head: str


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    """The repository the fixture mboxes were made from (same commit ids)."""
    repo = tmp_path_factory.mktemp("upstream") / "linux"
    base, head = make_repo(repo)
    return Upstream(repo, base, head)


@pytest.fixture
def tree(upstream: Upstream, tmp_path: Path) -> Path:
    """A developer's clone of upstream, checked out on master."""
    clone = tmp_path / "linux"
    git(tmp_path, "clone", "--quiet", str(upstream.repo), str(clone))
    git(clone, "config", "user.email", "dev@example.org")
    git(clone, "config", "user.name", "Dev")
    return clone


@pytest.fixture
def fresh_series(upstream: Upstream, tmp_path: Path) -> Path:
    """A directory of real format-patch files of the upstream series, made just now."""
    out = tmp_path / "outgoing"
    format_patch(upstream.repo, out)
    return out


@pytest.fixture
def farm(
    farm_toml: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Outcome]:
    """Run ``farm ARGS...`` in this process: exit code, stdout, stderr."""
    monkeypatch.chdir(farm_toml.parent)  # never the farm checkout itself

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
