# SPDX-License-Identifier: Apache-2.0
"""make runs the patches' code: the sandbox it runs in hides farm's secrets.

These tests run the probe of tests/build/planted.py (what a hostile Makefile rule would
do) through farm.build.sandbox with real bwrap; tests/build/test_hostile_patch.py runs
it inside a real kernel build.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from farm.build.failures import classify
from farm.build.sandbox import Sandbox, default_sandbox, for_config, secrets
from farm.config import load_config
from farm.errors import InfraError

from .planted import RAN, Planted

MINIMAL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "LC_ALL": "C"}


def run(sandbox: Sandbox, lines: list[str]) -> str:
    """The lines as one shell script in ``sandbox``, started from the test's whole
    environment (FARM_* and SSH_AUTH_SOCK included), as a worker starts make."""
    argv = sandbox.wrap(["sh", "-c", "\n".join(lines)], MINIMAL_ENV)
    proc = subprocess.run(argv, env=os.environ, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def build_dirs(root: Path) -> tuple[Path, Path]:
    src, out = root / "cache" / "src", root / "cache" / "out"
    src.mkdir(parents=True)
    out.mkdir()
    return src, out


def test_the_probe_finds_every_secret_when_nothing_confines_it(planted: Planted) -> None:
    # The control: this is what a build without a sandbox hands a hostile patch.
    src, _ = build_dirs(planted.root)
    proc = subprocess.run(
        ["sh", "-c", "\n".join(planted.probe(src))], capture_output=True, text=True, check=True
    )
    assert planted.leaked(proc.stdout) == sorted(planted.markers)
    assert "network: connected" in proc.stdout and planted.connections() == 1
    assert (src / "farm-was-here").exists()


def test_in_the_sandbox_the_probe_reads_no_secret_and_reaches_no_one(planted: Planted) -> None:
    src, out = build_dirs(planted.root)
    sandbox = default_sandbox(planted.data_dir).bind(read_only=[src], writable=[out])
    output = run(sandbox, [*planted.probe(src), f"echo built > {out}/vmlinux"])
    assert RAN in output
    assert planted.leaked(output) == []
    assert f"ssh key: cat: {planted.home}/.ssh/id_ed25519: No such file" in output
    assert f"config: cat: {planted.config}: No such file" in output
    assert "network: bash: connect: Connection refused" in output
    assert planted.connections() == 0
    assert "source tree: touch: " in output and "Read-only file system" in output
    assert not (src / "farm-was-here").exists()
    assert (out / "vmlinux").read_text() == "built\n"  # the output directory is writable


def test_without_bwrap_the_environment_is_still_minimal_but_files_are_readable(
    planted: Planted,
) -> None:
    # What `[build] sandbox = false` leaves: the documented risk of the opt-out.
    src, _ = build_dirs(planted.root)
    output = run(Sandbox(enabled=False), planted.probe(src))
    assert planted.leaked(output) == ["api_token", "config", "ssh_key"]
    assert "network: connected" in output


def test_a_directory_bound_inside_a_hidden_one_reappears_and_not_the_reverse(
    planted: Planted,
) -> None:
    # The cache under $HOME is bound back; a data directory inside the cache stays hidden.
    cache = planted.home / ".cache" / "farm"
    (cache / "data").mkdir(parents=True)
    (cache / "data" / "farm.db").write_text("rows")
    (cache / "out").mkdir()
    sandbox = Sandbox(hidden=(planted.home, cache / "data")).bind(read_only=[], writable=[cache])
    output = run(sandbox, [f"ls -a {planted.home}", f"ls {cache}", f"ls {cache}/data"])
    assert output.split() == [".", "..", ".cache", "data", "out"]  # data: empty


def test_a_missing_bwrap_is_our_failure_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="bwrap is not installed") as caught:
        Sandbox().check({"PATH": str(tmp_path)})
    assert "apt-get install bubblewrap" in str(caught.value)


def test_bwrap_failing_is_our_failure_with_its_own_words(tmp_path: Path) -> None:
    missing = tmp_path / "gone"  # a bound directory that does not exist makes bwrap fail
    with pytest.raises(InfraError, match=f"bwrap: Can't find source path {missing}") as caught:
        Sandbox().bind(read_only=[missing], writable=[]).check(MINIMAL_ENV)
    assert "bwrap --ro-bind / / true" in str(caught.value)
    # The same words in a build log are ours too, not the kernel's.
    failure = classify(
        [f"bwrap: Can't find source path {missing}: No such file\n"], 1, tmp_path, tmp_path
    )
    assert failure.fault == "infra" and failure.message.startswith("the build sandbox failed")


def test_the_sandbox_hides_what_farm_toml_names(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    farm_toml = tmp_path / "etc" / "farm.toml"
    farm_toml.parent.mkdir()
    farm_toml.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[[hosts]]\nname = "box"\nkind = "ssh"\naddress = "192.0.2.10"\n'
        f'key = "{keys / "id_ed25519"}"\nknown_hosts = "{keys / "known_hosts"}"\n'
        '[api]\ntoken_file = "/etc/farm-api-token"\n'
    )
    sandbox = for_config(load_config(farm_toml))
    assert sandbox.enabled and sandbox.kind == "bwrap"
    for path in (tmp_path / "data", farm_toml, farm_toml.parent, keys / "id_ed25519", keys):
        assert path in sandbox.hidden, path
    # A file directly in /etc is hidden alone: /etc as a whole holds what the build needs.
    assert Path("/etc/farm-api-token") in sandbox.hidden and Path("/etc") not in sandbox.hidden


def test_sandbox_false_in_farm_toml_turns_bwrap_off(tmp_path: Path) -> None:
    farm_toml = tmp_path / "farm.toml"
    farm_toml.write_text("[build]\nsandbox = false\n")
    sandbox = for_config(load_config(farm_toml))
    assert not sandbox.enabled and sandbox.kind == "none"
    assert sandbox.wrap(["make"], {"PATH": "/bin"}) == ["env", "-i", "PATH=/bin", "make"]


def test_system_directories_are_never_hidden_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/")
    hidden = secrets(Path("/var/lib/farm"), Path("/etc/farm.toml"))
    assert Path("/") not in hidden and Path("/etc") not in hidden
    assert {Path("/root"), Path("/var/lib/farm"), Path("/etc/farm.toml")} <= set(hidden)
