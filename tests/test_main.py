# SPDX-License-Identifier: Apache-2.0
"""The farm command's last line of defence: a bug is exit 4, one line and a saved traceback."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import click
import pytest

from farm.cli import COMMANDS, main
from farm.cli.common import get_config


@click.command()
@click.pass_context
def boom(ctx: click.Context) -> None:
    """A command with a bug, after it has read the configuration."""
    get_config(ctx)
    raise RuntimeError("the impossible happened\nwith a second line")


@click.command()
def boom_early() -> None:
    """A command with a bug, before it has read the configuration."""
    raise KeyError("slot")


@pytest.fixture(autouse=True)
def buggy_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "boom", f"{__name__}:boom")
    monkeypatch.setitem(COMMANDS, "boom-early", f"{__name__}:boom_early")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    assert captured.out == ""
    return int(exited.value.code or 0), captured.err


def saved(err: str, error: str) -> Path:
    """The traceback file the one line names, checked to be private and complete."""
    match = re.fullmatch(rf"farm: internal error: {error}; traceback in (\S+)\n", err)
    assert match, err
    path = Path(match.group(1))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    text = path.read_text()
    assert "Traceback (most recent call last)" in text and error.split(":")[0] in text
    return path


def test_a_bug_is_exit_4_with_one_line_and_the_traceback_in_the_data_dir(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, "boom")
    assert code == 4
    path = saved(err, "RuntimeError: the impossible happened with a second line")
    assert path.parent == farm_toml.parent / "data" / "tracebacks"
    assert path.read_text().startswith("farm boom\n")


def test_a_bug_before_the_config_is_read_still_finds_the_data_dir(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, "boom-early")
    assert code == 4
    assert saved(err, "KeyError: 'slot'").parent == farm_toml.parent / "data" / "tracebacks"


def test_without_a_readable_config_the_traceback_goes_to_the_state_dir(
    farm_toml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    farm_toml.write_text("hosts = [\n")  # the config may be part of the problem
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    code, err = run(capsys, "boom-early")
    assert code == 4
    assert saved(err, "KeyError: 'slot'").parent == tmp_path / "state" / "farm" / "tracebacks"


def test_with_no_writable_state_dir_a_temp_file_is_used(
    farm_toml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    farm_toml.write_text("hosts = [\n")
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "not-a-dir"))
    code, err = run(capsys, "boom-early")
    path = Path(err.rsplit(" ", 1)[-1].strip())
    try:
        assert code == 4
        assert path.parent == Path(tempfile.gettempdir())
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        path.unlink(missing_ok=True)


def test_farm_errors_keep_their_exit_codes(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, "hosts", "check", "nope")
    assert code == 1 and err.startswith("farm: error: no host named 'nope'")
    assert not (farm_toml.parent / "data" / "tracebacks").exists()
