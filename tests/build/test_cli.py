# SPDX-License-Identifier: Apache-2.0
"""`farm build`: a series prefix or a commit, --json, exit codes, the Build table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from farmcli import run
from kernel_fixtures import KernelBuildEnv
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.store import Store
from farm.store.builds import Build, BuildState
from farm.store.series import Application, AppliedCommit, Series


def test_build_needs_a_series_or_a_commit(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "build")
    assert code == 1
    assert "give either a SERIES id or --commit SHA" in err
    assert "hint: farm build 3 --upto 2" in err


def test_a_series_never_applied_is_refused_with_the_next_step(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "build", "41", "--upto", "1")
    assert code == 1
    assert "series 41 has not been applied to a tree" in err


@pytest.mark.slow
@pytest.mark.kernel
def test_a_series_prefix_builds_its_commit_and_is_recorded(
    farm_toml: Path,
    monkeypatch: pytest.MonkeyPatch,
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Artefacts where soak_kernel left them, so the base is a cache hit; the database
    # stays private to the test.
    monkeypatch.setenv("FARM_DATA_DIR", str(kernel_build_env.data_dir))
    monkeypatch.setenv("FARM_DATABASE_URL", f"sqlite:///{farm_toml.parent / 'farm.db'}")
    store = Store(f"sqlite:///{farm_toml.parent / 'farm.db'}")
    with store.session() as session:
        series = Series(title="mm: demo", total=1, source="test", content_hash="0" * 64)
        application = Application(
            series=series,
            tree=str(kernel_build_env.tree),
            base_commit=soak_kernel.commit,
            branch="farm/test",
        )
        application.commits.append(AppliedCommit(index=1, sha=soak_kernel.commit))
        session.add_all([series, application])
        session.flush()
        series_id = series.id

    code, _, err = run(capsys, "build", str(series_id), "--upto", "2")
    assert code == 1 and f"series {series_id} has no applied patch 2 (applied: 1)" in err

    code, out, _ = run(capsys, "build", str(series_id), "--upto", "0", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["cached"] is True and result["build_id"] == soak_kernel.build_id
    assert Path(result["bzimage"]) == soak_kernel.bzimage
    with store.session() as session:
        row = session.scalars(select(Build)).one()
        assert (row.commit, row.state, row.release) == (
            soak_kernel.commit,
            BuildState.OK,
            soak_kernel.release,
        )
    store.dispose()
