# SPDX-License-Identifier: Apache-2.0
"""Where farm api gets its bearer token, and the refusals that keep it safe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from farm.api.auth import load_token
from farm.config import FarmConfig
from farm.errors import UserError

GOOD = "s3cret-token-abcdefghijklmnop"


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_API_TOKEN", raising=False)


def with_token_file(config: FarmConfig, tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "api-token"
    path.write_text(text)
    path.chmod(mode)
    config.api.token_file = path
    return path


def test_the_environment_wins_over_the_file(
    config: FarmConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_token_file(config, tmp_path, "file-token-abcdefghijkl\n", 0o600)
    monkeypatch.setenv("FARM_API_TOKEN", GOOD)
    assert load_token(config) == GOOD


def test_the_file_is_read_and_stripped(config: FarmConfig, tmp_path: Path) -> None:
    with_token_file(config, tmp_path, GOOD + "\n", 0o600)
    assert load_token(config) == GOOD


def test_no_token_anywhere_says_how_to_make_one(config: FarmConfig) -> None:
    with pytest.raises(UserError) as error:
        load_token(config)
    assert "FARM_API_TOKEN is unset" in str(error.value)
    assert "secrets.token_urlsafe" in str(error.value)
    assert str(config.data_dir / "api-token") in str(error.value)


def test_a_token_file_others_can_read_is_refused(config: FarmConfig, tmp_path: Path) -> None:
    path = with_token_file(config, tmp_path, GOOD, 0o644)
    with pytest.raises(UserError, match="readable by others") as error:
        load_token(config)
    assert f"chmod 600 {path}" in str(error.value)
    assert GOOD not in str(error.value)


def test_a_short_token_is_refused_without_showing_it(
    config: FarmConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARM_API_TOKEN", "short")
    with pytest.raises(UserError, match=r"too short \(5 characters") as error:
        load_token(config)
    assert "'short'" not in str(error.value)


def test_the_api_section_of_farm_toml(farm_toml: Path) -> None:
    from farm.config import load_config

    farm_toml.write_text(farm_toml.read_text() + '[api]\nport = 9555\ntoken_file = "tok"\n')
    config = load_config(farm_toml)
    assert (config.api.host, config.api.port) == ("127.0.0.1", 9555)
    assert config.api.token_file == farm_toml.parent / "tok"


@pytest.mark.slow
def test_farm_api_will_not_start_without_a_token(farm_toml: Path) -> None:
    farm = Path(sys.executable).parent / "farm"
    result = subprocess.run([str(farm), "api"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "farm api needs a bearer token" in result.stderr
    assert "hint: python3 -c" in result.stderr
