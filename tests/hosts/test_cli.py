# SPDX-License-Identifier: Apache-2.0
"""`farm hosts` against a real sshd: list, check, and trusting a new host key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Sshd

from farm.hosts import keys


@pytest.fixture
def farm_toml(tmp_path: Path, sshd: Sshd) -> Path:
    """One bare-metal host (the sshd) whose key farm does not know yet, one QEMU host."""
    path = tmp_path / "farm.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "127.0.0.1"\nport = {sshd.port}\n'
        f'user = "{sshd.endpoint.user}"\nkey = "{sshd.endpoint.key}"\ntags = ["laptop"]\n'
        '[[hosts]]\nname = "workstation"\nkind = "qemu"\n'
    )
    return path


def farm(farm_toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_CONFIG": str(farm_toml)}
    return subprocess.run(
        [sys.executable, "-m", "farm", "hosts", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_list_shows_the_inventory_without_connecting(farm_toml: Path, sshd: Sshd) -> None:
    done = farm(farm_toml, "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["laptop"]["address"] == f"{sshd.endpoint.user}@127.0.0.1:{sshd.port}"
    assert (rows["laptop"]["boot"], rows["laptop"]["power_state"]) == ("grub", "unknown")
    assert rows["workstation"]["address"] == "-"  # never started: no port yet
    assert rows["workstation"]["power_state"] == "off"


@pytest.mark.slow  # five farm processes, each connecting over SSH
def test_an_unknown_host_key_is_reported_and_trusted_only_with_its_fingerprint(
    farm_toml: Path, sshd: Sshd, tmp_path: Path
) -> None:
    fingerprint = keys.fingerprint(sshd.host_key)
    before = farm(farm_toml, "check", "laptop", "--json")
    assert before.returncode == 3
    [report] = json.loads(before.stdout)
    assert report["ok"] is False and report["kernel_release"] is None
    assert any("is not in farm's known_hosts" in p for p in report["problems"])

    asked = farm(farm_toml, "trust", "laptop")
    assert asked.returncode == 1
    assert f"farm hosts trust laptop --fingerprint {fingerprint}" in asked.stderr
    wrong = farm(farm_toml, "trust", "laptop", "--fingerprint", "SHA256:forged")
    assert wrong.returncode == 1 and "nothing recorded" in wrong.stderr
    assert not (tmp_path / "data" / "ssh" / "known_hosts").exists()

    trusted = farm(farm_toml, "trust", "laptop", "--fingerprint", fingerprint)
    assert trusted.returncode == 0, trusted.stderr
    after = farm(farm_toml, "check", "laptop", "--json")
    [report] = json.loads(after.stdout)
    assert report["kernel_release"] == os.uname().release  # the sshd runs on this machine
    assert len(report["boot_id"]) == 36 and report["uptime_seconds"] > 0
    # Connected, but this machine is not set up for grub one-shot boots: says why.
    assert report["ok"] is False and report["boot_method_ok"] is False
    [problem] = report["problems"]
    assert "needs GRUB_DEFAULT=saved" in problem or "needed to boot with 'grub'" in problem
    assert after.returncode == 3


def test_check_names_an_unknown_host(farm_toml: Path) -> None:
    done = farm(farm_toml, "check", "desktop")
    assert done.returncode == 1
    assert "no host named 'desktop' in the inventory (known: laptop, workstation)" in done.stderr


def test_a_qemu_host_never_started_says_how_to_start_it(farm_toml: Path) -> None:
    done = farm(farm_toml, "start", "workstation")
    assert done.returncode == 1
    assert "has no kernel to start yet" in done.stderr
    assert "farm hosts start workstation --kernel BZIMAGE" in done.stderr
