# SPDX-License-Identifier: Apache-2.0
"""farm's own SSH client key and known_hosts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from farm.hosts import keys


def test_the_client_key_is_made_once_and_kept(tmp_path: Path) -> None:
    key = keys.client_key(tmp_path)
    public = keys.client_public_key(tmp_path)
    assert key == tmp_path / "ssh" / "id_ed25519"
    assert public.startswith("ssh-ed25519 ")
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ssh").stat().st_mode & 0o777 == 0o700
    assert keys.client_key(tmp_path) == key and keys.client_public_key(tmp_path) == public


def test_fingerprints_match_ssh_keygen(tmp_path: Path) -> None:
    public = keys.client_public_key(tmp_path)
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{keys.client_key(tmp_path)}.pub"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert keys.fingerprint(public) == listed.split()[1]


def test_a_dropbear_host_key_is_created_once(tmp_path: Path) -> None:
    first = keys.dropbear_host_key(tmp_path / "hk")
    assert first.startswith("ssh-ed25519 ") and len(first.split()) == 2
    assert keys.dropbear_host_key(tmp_path / "hk") == first


def test_recording_a_key_replaces_only_that_host(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("# operator's comment\nother.example ssh-ed25519 AAAAold\n")
    keys.record_host_key(known, "[127.0.0.1]:2222", "ssh-ed25519 AAAAone", "farm-qemu:laptop")
    # The VM moved to another port: its old line goes, whatever its host name was.
    keys.record_host_key(known, "[127.0.0.1]:2300", "ssh-ed25519 AAAAtwo x", "farm-qemu:laptop")
    keys.record_host_key(known, "[127.0.0.1]:2400", "ssh-ed25519 AAAAws", "farm-qemu:workstation")
    assert known.read_text().splitlines() == [
        "# operator's comment",
        "other.example ssh-ed25519 AAAAold",
        "[127.0.0.1]:2300 ssh-ed25519 AAAAtwo farm-qemu:laptop",
        "[127.0.0.1]:2400 ssh-ed25519 AAAAws farm-qemu:workstation",
    ]
    assert known.stat().st_mode & 0o777 == 0o600
    assert keys.host_pattern("laptop.lan", 22) == "laptop.lan"


def test_an_ssh_dir_left_open_is_made_private_again(tmp_path: Path) -> None:
    key = keys.client_key(tmp_path)
    key.parent.chmod(0o755)  # e.g. restored from a backup without its modes
    assert keys.client_key(tmp_path) == key
    assert key.parent.stat().st_mode & 0o777 == 0o700


def test_key_files_are_made_in_private_directories(tmp_path: Path) -> None:
    known = tmp_path / "fresh" / "known_hosts"
    keys.record_host_key(known, "pc.lab", "ssh-ed25519 AAAAone", "pc")
    assert known.parent.stat().st_mode & 0o777 == 0o700
    keys.dropbear_host_key(tmp_path / "hosts" / "vm" / "host_key")
    assert (tmp_path / "hosts" / "vm").stat().st_mode & 0o777 == 0o700
