# SPDX-License-Identifier: Apache-2.0
"""The root of a QEMU host: a gzipped cpio with busybox, dropbear and farm's keys.

The archive is written by farm itself (newc format), so file owners, modes and device
nodes are right without root privileges and the same inputs give the same bytes.
dropbear is the controller's own binary with the shared libraries ``ldd`` reports;
busybox must be the static build. The init script and inittab live in
workers/initramfs/ so they can be read and changed as shell, not as Python strings.
"""

from __future__ import annotations

import gzip
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farm.data import initramfs_dir
from farm.errors import InfraError
from farm.hosts.keys import write_atomic

WORKERS = initramfs_dir()
BUSYBOX = Path("/bin/busybox")
DROPBEAR = Path("/usr/sbin/dropbear")
HOST_KEY_PATH = "etc/dropbear/dropbear_ed25519_host_key"
OPENSSH_KEY_PATH = "etc/dropbear/ssh_host_ed25519_key"
_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)$")


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def build_initramfs(
    output: Path,
    *,
    host_key: Path,
    authorized_keys: str,
    hostname: str,
    busybox: Path = BUSYBOX,
    dropbear: Path = DROPBEAR,
    openssh_host_key: bytes | None = None,
) -> Path:
    """Write the initramfs to ``output`` (atomically) and return its path. With
    ``openssh_host_key``, the same key for the OpenSSH of a root file system image the
    init hands over to (``farm.root=`` on the command line)."""
    entries = [
        *(Entry(d, stat.S_IFDIR | 0o755) for d in _DIRS),
        Entry("root", stat.S_IFDIR | 0o700),
        Entry("root/.ssh", stat.S_IFDIR | 0o700),
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)),
        Entry("init", stat.S_IFREG | 0o755, (WORKERS / "init").read_bytes()),
        Entry("etc/inittab", stat.S_IFREG | 0o644, (WORKERS / "inittab").read_bytes()),
        Entry("etc/hostname", stat.S_IFREG | 0o644, f"{hostname}\n".encode()),
        # '*' is no password at all, but not a locked account (dropbear refuses '!').
        Entry("etc/passwd", stat.S_IFREG | 0o644, b"root:*:0:0:root:/root:/bin/sh\n"),
        Entry("etc/group", stat.S_IFREG | 0o644, b"root:x:0:\ntty:x:5:\n"),
        Entry("etc/shells", stat.S_IFREG | 0o644, b"/bin/sh\n"),
        Entry("root/.ssh/authorized_keys", stat.S_IFREG | 0o600, authorized_keys.encode()),
        Entry(HOST_KEY_PATH, stat.S_IFREG | 0o600, host_key.read_bytes()),
        Entry("bin/busybox", stat.S_IFREG | 0o755, _read(busybox)),
        Entry("usr/sbin/dropbear", stat.S_IFREG | 0o755, _read(dropbear)),
        *_libraries(dropbear),
    ]
    if openssh_host_key is not None:
        entries.append(Entry(OPENSSH_KEY_PATH, stat.S_IFREG | 0o600, openssh_host_key))
    # 0600: the archive holds the host's private key.
    write_atomic(output, gzip.compress(newc(entries), compresslevel=6, mtime=0), 0o600)
    return output


_DIRS = [
    "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "etc/dropbear", "dev", "proc",
    "sys", "run", "tmp", "var", "var/log", "lib", "lib64", "lib/x86_64-linux-gnu",
]  # fmt: skip


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InfraError(
            f"cannot read {path} for the QEMU host initramfs: {exc.strerror}",
            hint="make apt (installs busybox-static and dropbear-bin)",
        ) from exc


def _libraries(binary: Path) -> list[Entry]:
    """The shared libraries (and the loader) ``binary`` needs, at the paths ldd names."""
    try:
        out = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise InfraError(f"ldd {binary} failed: {exc}") from exc
    entries = []
    for line in out.splitlines():
        match = _LDD_PATH.search(line.strip())
        if match:
            path = Path(match.group(1))
            entries.append(Entry(str(path).lstrip("/"), stat.S_IFREG | 0o755, _read(path)))
    return entries


def newc(entries: list[Entry]) -> bytes:
    """An uncompressed cpio archive in the kernel's "newc" format, owned by root."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = entry.name.encode() + b"\0"
        fields = (
            ino, entry.mode, 0, 0, 2 if stat.S_ISDIR(entry.mode) else 1, 0, len(entry.data),
            0, 0, entry.rdev[0], entry.rdev[1], len(name), 0,
        )  # fmt: skip
        out += b"070701" + b"".join(b"%08X" % field for field in fields) + name
        out += b"\0" * (-len(out) % 4)
        out += entry.data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)
