# SPDX-License-Identifier: Apache-2.0
"""farm.toml: how configuration is found, merged and rejected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from farm.cli import main
from farm.config import load_config
from farm.errors import UserError


def test_embedded_default_has_two_qemu_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("FARM_CONFIG", raising=False)
    config = load_config()
    assert [(h.name, h.kind, h.boot, h.power.kind) for h in config.hosts] == [
        ("laptop", "qemu", "qemu", "qemu"),
        ("workstation", "qemu", "qemu", "qemu"),
    ]
    assert config.db_url.startswith("sqlite:///")


def test_environment_overrides_the_file(farm_toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    farm_toml.write_text('broker_url = "redis://10.0.0.1:6379/0"\n')
    monkeypatch.setenv("FARM_BROKER_URL", "redis://127.0.0.1:7000/1")
    assert load_config(farm_toml).broker_url == "redis://127.0.0.1:7000/1"


def test_relative_paths_are_relative_to_the_file(farm_toml: Path) -> None:
    farm_toml.write_text('[[trees]]\nname = "linux"\npath = "src/linux"\n')
    assert load_config(farm_toml).trees[0].path == farm_toml.parent / "src" / "linux"


def test_error_names_file_key_value_and_allowed_values(farm_toml: Path) -> None:
    farm_toml.write_text('[[hosts]]\nname = "box"\nkind = "telnet"\n')
    with pytest.raises(UserError) as excinfo:
        load_config(farm_toml)
    message = str(excinfo.value)
    assert str(farm_toml) in message
    assert "hosts.0.kind" in message
    assert "'telnet'" in message
    assert "'ssh', 'qemu' or 'sim'" in message


def test_duplicate_host_names_are_rejected(farm_toml: Path) -> None:
    farm_toml.write_text(
        '[[hosts]]\nname = "a"\nkind = "qemu"\n[[hosts]]\nname = "a"\nkind = "ssh"\n'
        'address = "192.0.2.10"\n'
    )
    with pytest.raises(UserError, match="duplicate names a"):
        load_config(farm_toml)


def test_broken_toml_is_a_user_error(farm_toml: Path) -> None:
    farm_toml.write_text("hosts = [\n")
    with pytest.raises(UserError, match="cannot read TOML"):
        load_config(farm_toml)


def test_config_check_json(farm_toml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["config", "check", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == str(farm_toml)
    assert [h["name"] for h in out["config"]["hosts"]] == ["laptop", "workstation"]


def test_config_check_exit_code_on_bad_config(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    farm_toml.write_text("data_dir = 3\nbogus = 1\n")
    with pytest.raises(SystemExit) as excinfo:
        main(["config", "check"])
    assert excinfo.value.code == 1
    assert "bogus" in capsys.readouterr().err


@pytest.mark.parametrize("doc", ["README.md", "docs/baremetal.md", "docs/hosts.md"])
def test_the_host_examples_in_the_docs_are_valid_configs(doc: str, tmp_path: Path) -> None:
    """Every farm.toml snippet with a [[hosts]] entry in the docs loads as written."""
    text = (Path(__file__).parents[1] / doc).read_text()
    snippets = [s for s in re.findall(r"```toml\n(.*?)```", text, re.S) if "[[hosts]]" in s]
    assert snippets, f"{doc} has no host example"
    for i, snippet in enumerate(snippets):
        path = tmp_path / f"{i}.toml"
        path.write_text(snippet)
        config = load_config(path)
        assert config.hosts, snippet


def test_an_ssh_host_without_an_address_is_refused_naming_the_key(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    farm_toml.write_text('[[hosts]]\nname = "pi"\nkind = "ssh"\n')  # once meant root@127.0.0.1
    with pytest.raises(SystemExit) as excinfo:
        main(["config", "check"])
    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert "host 'pi' (kind 'ssh') has no address" in err
    assert 'address = "192.0.2.10"' in err


def test_a_qemu_host_needs_no_address(farm_toml: Path) -> None:
    farm_toml.write_text('[[hosts]]\nname = "vm"\nkind = "qemu"\n')
    assert load_config(farm_toml).hosts[0].address == "127.0.0.1"  # its forwarded SSH port
