# SPDX-License-Identifier: Apache-2.0
"""Run a kernel build's make in a bubblewrap sandbox.

A patch from a mailing list can change any Makefile or script of the tree, so make runs
the sender's code. Unconfined, that code would run as the farm user next to the
database URL and Redis password (environment, farm.toml), the SSH key that gives root
on every test host, and the network. ``bwrap`` (Debian's bubblewrap) gives make a view
of the machine in which:

- the environment is a fixed, minimal one (no FARM_*, no SSH agent, no secrets);
- network, PIDs, IPC and host name are private: no route anywhere, not even to Redis
  on loopback, and no /proc/<pid>/environ of the worker;
- the home directory, /root, the data directory, the configuration's directory and the
  files the configuration names (host keys, known_hosts, API token) are empty;
- everything is read-only but a private /tmp, the output directory and ccache; the
  source tree and the git metadata scripts/setlocalversion reads are bound read-only;
- no capabilities: bwrap run as root keeps them all unless told, and CAP_SYS_ADMIN
  would let the build unmount what hides the secrets.

``[build] sandbox = false`` in farm.toml turns bwrap off for machines that cannot run
it (docs/build.md spells out the risk); make then still gets only the minimal
environment, through ``env -i``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm.build.artifacts import SandboxKind
from farm.config import FarmConfig, default_config_path
from farm.errors import InfraError

# Always private: /tmp may hold other users' files and ssh-agent sockets, /run holds
# the agent, D-Bus and database sockets.
_PRIVATE = (Path("/tmp"), Path("/run"))  # noqa: S108 - replaced by an empty tmpfs
# The system's own directories: hiding one would hide what the build needs.
_SYSTEM = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/usr/local",
        "/var",
        "/var/lib",
    ]
)
_HIDE, _READ_ONLY, _WRITABLE = 0, 1, 2  # also the order at equal depth: binds win
_CHECK_HINT = (
    "check: bwrap --ro-bind / / true   (it needs user namespaces: sysctl "
    "kernel.unprivileged_userns_clone user.max_user_namespaces); where bwrap cannot "
    "run, [build] sandbox = false in farm.toml turns it off: read docs/build.md first"
)


@dataclass(frozen=True)
class Sandbox:
    """What make may not see (``hidden``) and what it may read or write besides the
    read-only system; ``enabled=False`` runs make unconfined but for the environment."""

    hidden: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    enabled: bool = True

    @property
    def kind(self) -> SandboxKind:
        return "bwrap" if self.enabled else "none"

    def bind(self, *, read_only: Sequence[Path], writable: Sequence[Path]) -> Sandbox:
        """This sandbox with one build's directories made visible again."""
        return dataclasses.replace(
            self,
            read_only=tuple(p.resolve() for p in read_only),
            writable=tuple(p.resolve() for p in writable),
        )

    def wrap(self, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """``argv`` as a self-contained command: pasted into a shell, it runs the same
        way whatever that shell's environment holds."""
        if not self.enabled:
            return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
        setenv = [arg for key, value in env.items() for arg in ("--setenv", key, value)]
        return ["bwrap", *self._mounts(), *_ISOLATION, "--clearenv", *setenv, "--", *argv]

    def check(self, env: Mapping[str, str]) -> None:
        """Raise InfraError unless bwrap runs here with these very mounts: a build is
        never quietly run without its sandbox."""
        if not self.enabled:
            return
        if shutil.which("bwrap", path=env.get("PATH")) is None:
            raise InfraError(
                "cannot sandbox kernel builds: bwrap is not installed",
                hint="apt-get install bubblewrap   # or: make setup",
            )
        try:
            proc = subprocess.run(
                self.wrap(["true"], env),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InfraError(f"cannot sandbox kernel builds: {exc}", hint=_CHECK_HINT) from exc
        if proc.returncode != 0:
            error = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise InfraError(f"cannot sandbox kernel builds: {error}", hint=_CHECK_HINT)

    def _mounts(self) -> list[str]:
        """Applied from the root down, so a bound directory inside a hidden one (the
        cache under $HOME) reappears, while a hidden one inside a bound one stays
        hidden. A hidden directory becomes an empty tmpfs, a hidden file /dev/null."""
        ops = [(p, _HIDE) for p in (*_PRIVATE, *self.hidden) if p.exists()]
        ops += [(p, _READ_ONLY) for p in self.read_only] + [(p, _WRITABLE) for p in self.writable]
        ops.sort(key=lambda op: (len(op[0].parts), op[1]))
        args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path, what in ops:
            if what == _HIDE and _already_hidden(path, ops):
                continue
            args += _mount(path, what)
        return args


# Private namespaces but the user one (bwrap makes one itself when it needs it), no
# capabilities, killed with farm, no controlling terminal to inject keystrokes into.
_ISOLATION = (
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    "--new-session",
    "--chdir",
    "/",
)


def _mount(path: Path, what: int) -> list[str]:
    if what == _READ_ONLY:
        return ["--ro-bind", str(path), str(path)]
    if what == _WRITABLE:
        return ["--bind", str(path), str(path)]
    if path.is_dir():
        return ["--tmpfs", str(path)]
    return ["--ro-bind", "/dev/null", str(path)]


def _already_hidden(path: Path, ops: Sequence[tuple[Path, int]]) -> bool:
    """True when the deepest mount above ``path`` hides it already."""
    above = [(p, w) for p, w in ops if p != path and p in path.parents]
    return bool(above) and max(above, key=lambda op: (len(op[0].parts), op[1]))[1] == _HIDE


def secrets(
    data_dir: Path, config_file: Path | None = None, files: Iterable[Path] = ()
) -> tuple[Path, ...]:
    """What a build must not read: the home directory (~/.ssh, ~/.config/farm), /root,
    the data directory (database, API token), and the configuration file and each of
    ``files`` with the directories holding them."""
    config = config_file or Path(os.environ.get("FARM_CONFIG") or default_config_path())
    found = [Path.home(), Path.home() / ".ssh", Path("/root"), data_dir]
    for file in (config, *files):
        found += [file, file.parent] if _hideable(file.parent) else [file]
    return tuple(dict.fromkeys(p.expanduser().resolve() for p in found if _hideable(p)))


def _hideable(path: Path) -> bool:
    """The system's own directories hold what the build needs (a HOME of /, a
    configuration in /etc): the secrets in them are hidden one by one instead."""
    return str(path.expanduser().resolve()) not in _SYSTEM


def default_sandbox(data_dir: Path) -> Sandbox:
    """For callers without a configuration at hand (tests, benchmarks): the secrets
    of the configuration in use ($FARM_CONFIG or the default path) are hidden."""
    return Sandbox(hidden=secrets(data_dir))


def for_config(config: FarmConfig) -> Sandbox:
    """The sandbox ``config`` asks for, hiding every secret file it names."""
    files = [p for h in config.hosts for p in (h.key, h.known_hosts) if p is not None]
    if config.api.token_file is not None:
        files.append(config.api.token_file)
    hidden = secrets(config.data_dir, config.source, files)
    return Sandbox(hidden=hidden, enabled=config.build.sandbox)
