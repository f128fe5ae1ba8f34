# SPDX-License-Identifier: Apache-2.0
"""The QEMU host's initramfs, read back with the real cpio tool."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from farm.config import HostConfig
from farm.hosts import keys
from farm.hosts.initramfs import build_initramfs
from farm.hosts.qemu import QemuVm


@pytest.fixture
def initramfs(tmp_path: Path) -> Path:
    host_key = tmp_path / "host_key"
    subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(host_key)], check=True,
                   capture_output=True)  # fmt: skip
    return build_initramfs(
        tmp_path / "initramfs.cpio.gz",
        host_key=host_key,
        authorized_keys="ssh-ed25519 AAAAC3Nza farm\n",
        hostname="laptop",
    )


def listing(archive: Path) -> dict[str, str]:
    """name -> `cpio -tv` line, from the gzip-compressed archive."""
    out = subprocess.run(
        ["cpio", "-tv", "--quiet"], input=gzip.decompress(archive.read_bytes()),
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return {line.split()[-1]: line for line in out.splitlines()}


def extract(archive: Path, name: str, into: Path) -> bytes:
    subprocess.run(
        ["cpio", "-id", "--quiet", name], input=gzip.decompress(archive.read_bytes()),
        cwd=into, check=True,
    )  # fmt: skip
    return (into / name).read_bytes()


def test_it_holds_busybox_dropbear_with_its_libraries_and_the_init(initramfs: Path) -> None:
    files = listing(initramfs)
    needed = subprocess.run(["ldd", "/usr/sbin/dropbear"], capture_output=True, text=True)
    libraries = [w.lstrip("/") for w in needed.stdout.split() if w.startswith("/")]
    assert {"init", "bin/busybox", "usr/sbin/dropbear", "etc/inittab", *libraries} <= set(files)
    assert files["init"].startswith("-rwxr-xr-x")
    assert files["dev/console"].startswith("crw-------")  # the kernel opens it before /init


def test_keys_are_private_to_root(initramfs: Path, tmp_path: Path) -> None:
    files = listing(initramfs)
    for name in ("etc/dropbear/dropbear_ed25519_host_key", "root/.ssh/authorized_keys"):
        assert files[name].split()[:4] == ["-rw-------", "1", "root", "root"]
    assert files["root/.ssh"].startswith("drwx------")
    assert initramfs.stat().st_mode & 0o777 == 0o600, "the archive holds the host key"
    authorized = extract(initramfs, "root/.ssh/authorized_keys", tmp_path)
    assert authorized == b"ssh-ed25519 AAAAC3Nza farm\n"
    assert extract(initramfs, "etc/hostname", tmp_path) == b"laptop\n"


def test_the_same_inputs_give_the_same_bytes(initramfs: Path, tmp_path: Path) -> None:
    again = build_initramfs(
        tmp_path / "again.cpio.gz",
        host_key=tmp_path / "host_key",
        authorized_keys="ssh-ed25519 AAAAC3Nza farm\n",
        hostname="laptop",
    )
    assert again.read_bytes() == initramfs.read_bytes()


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_qemu_hosts_key_material_is_private_even_where_it_was_not(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vm = QemuVm(HostConfig(name="laptop", kind="qemu"), data)
    keys.client_key(data)
    for directory in (vm.dir, keys.ssh_dir(data)):  # left open by an older farm or a cp -r
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
    vm.provision()
    assert mode(vm.dir) == mode(keys.ssh_dir(data)) == 0o700
    assert mode(vm.host_key) == mode(vm.initrd) == mode(keys.client_key(data)) == 0o600
