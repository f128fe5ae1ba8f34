# SPDX-License-Identifier: Apache-2.0
"""farm's own SSH identity and known_hosts.

farm never uses the operator's ~/.ssh: it has its own client key and its own
known_hosts under ``<data_dir>/ssh/``. A QEMU host's key is generated here when the VM
is provisioned and recorded at once, so no key is ever accepted at connect time.
Files are written atomically under a lock because several workers may provision
hosts at the same time. Key material, and anything holding it (a VM's initramfs), is
0600 in a 0700 directory.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from farm.errors import InfraError


def ssh_dir(data_dir: Path) -> Path:
    return data_dir / "ssh"


def known_hosts_path(data_dir: Path) -> Path:
    return ssh_dir(data_dir) / "known_hosts"


def host_pattern(address: str, port: int) -> str:
    """The name OpenSSH and paramiko look a host up by in known_hosts."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(public_key: str) -> str:
    """``SHA256:...`` of an OpenSSH public key line or its base64 blob, as ssh-keygen -l."""
    blob = public_key.split()[1] if " " in public_key.strip() else public_key.strip()
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter, made so if it was not."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` for read-modify-write of shared files."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700 if it is new
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700 if it is new
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tool(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError as exc:
        raise InfraError(
            f"{argv[0]} is not installed; farm needs it to {what}",
            hint="make apt (installs openssh-client and dropbear-bin)",
        ) from exc
    if done.returncode != 0:
        raise InfraError(f"{argv[0]} failed to {what}: {done.stderr.strip() or done.stdout}")
    return done.stdout


def client_key(data_dir: Path) -> Path:
    """farm's private ed25519 client key, generated on first use (public key beside it)."""
    key = private_dir(ssh_dir(data_dir)) / "id_ed25519"
    with locked(key):
        if not key.exists():
            _tool(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "farm", "-f", str(key)],
                "create farm's SSH client key",
            )
    return key


def client_public_key(data_dir: Path) -> str:
    return Path(f"{client_key(data_dir)}.pub").read_text().strip()


def dropbear_host_key(path: Path) -> str:
    """Create (once) a dropbear ed25519 host key at ``path``; return its public key line."""
    with locked(path):
        if not path.exists():
            _tool(["dropbearkey", "-t", "ed25519", "-f", str(path)], "create a VM host key")
    out = _tool(["dropbearkey", "-y", "-f", str(path)], "read a VM host key")
    for line in out.splitlines():
        if line.startswith("ssh-"):
            kind, blob = line.split()[:2]
            return f"{kind} {blob}"
    raise InfraError(f"dropbearkey -y printed no public key for {path}: {out!r}")


def openssh_host_key(dropbear_key: Path) -> bytes:
    """The same host key in OpenSSH's format, for a VM whose own sshd serves it."""
    target = dropbear_key.with_name(dropbear_key.name + ".openssh")
    with locked(target):
        if not target.exists() or target.stat().st_mtime < dropbear_key.stat().st_mtime:
            target.unlink(missing_ok=True)
            _tool(
                ["dropbearconvert", "dropbear", "openssh", str(dropbear_key), str(target)],
                "convert a VM host key for OpenSSH",
            )
            target.chmod(0o600)
    return target.read_bytes()


def record_host_key(known_hosts: Path, pattern: str, public_key: str, label: str) -> None:
    """Make ``public_key`` the one key of ``pattern``; lines labelled ``label`` (a host
    farm provisions, whose port may change) are replaced too."""
    kind, blob = public_key.split()[:2]
    with locked(known_hosts):
        old = known_hosts.read_text().splitlines() if known_hosts.exists() else []
        keep = [line for line in old if not _entry_for(line, pattern, label)]
        keep.append(f"{pattern} {kind} {blob} {label}")
        write_atomic(known_hosts, ("\n".join(keep) + "\n").encode(), 0o600)


def _entry_for(line: str, pattern: str, label: str) -> bool:
    fields = line.split()
    if len(fields) < 3 or line.startswith("#"):
        return False
    return pattern in fields[0].split(",") or (len(fields) > 3 and fields[3] == label)
