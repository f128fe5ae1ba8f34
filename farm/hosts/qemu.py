# SPDX-License-Identifier: Apache-2.0
"""QEMU virtual hosts: a VM that behaves like a lab machine reached over SSH.

farm provisions each VM under ``<data_dir>/hosts/<name>/``: a dropbear host key made
by farm (and recorded in farm's known_hosts before the VM starts, so nothing is ever
trusted at connect time), an initramfs with busybox, dropbear and farm's client key,
a sparse scratch disk used as swap, and a copy of the kernel it runs. QEMU runs
daemonized (one process per host; KVM when farm.hosts.accel finds it works, else TCG)
with its pid, forwarded SSH port and kernel recorded there, so any worker can find,
stop or restart the VM another one started. Each VM has a QMP socket (``qmp.sock``,
private to farm's user): farm asks QEMU for its status, resets it and powers it off
through it (the ``qemu.qmp`` client) rather than sending signals; SIGKILL remains only
for a QEMU that no longer answers.

The serial console is appended to console.log; the offset where each boot starts is
kept in the state, so a boot failure shows that boot's console only. A crash ends
the VM: ``oops=panic`` and ``panic=-1`` reboot at once and ``-no-reboot`` turns a reboot into QEMU
exiting, so a dead kernel is a dead process, not a silent hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from qemu.qmp import QMPClient, QMPError

from farm.config import HostConfig, QemuConfig
from farm.errors import InfraError, UserError
from farm.hosts import keys
from farm.hosts.accel import accel_args
from farm.hosts.base import BootableKernel, BootMethod, SshEndpoint
from farm.hosts.console import console_path, host_dir
from farm.hosts.initramfs import build_initramfs
from farm.hosts.remote import RemoteHost

QEMU = "qemu-system-x86_64"
LOOPBACK = "127.0.0.1"
# no_timer_check: under TCG on a busy host the IO-APIC timer check can fail and panic
# the boot ("IO-APIC + timer doesn't work!"); the guest's timer is fine.
BASE_CMDLINE = "console=ttyS0,115200 panic=-1 oops=panic no_timer_check"
QMP_SECONDS = 10.0
RESET_SETTLE_SECONDS = 1.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, less its NUL
log = logging.getLogger(__name__)
T = TypeVar("T")
_HDRS_OFFSET = 0x202
_VERSION_POINTER = 0x20E


@dataclass(frozen=True)
class KernelImage:
    """A bzImage on disk, described by its own header (for `farm hosts start --kernel`).

    The header carries the string `uname -r` and `uname -v` will print, so any bzImage
    can be booted and verified, not only farm's builds.
    """

    bzimage: Path
    release: str
    build_id: str

    @property
    def system_map(self) -> Path:
        return self.bzimage.with_name("System.map")

    @classmethod
    def from_bzimage(cls, path: Path) -> KernelImage:
        try:
            head = path.read_bytes()[:0x10000]
        except OSError as exc:
            raise UserError(f"cannot read kernel image {path}: {exc.strerror}") from exc
        if head[_HDRS_OFFSET : _HDRS_OFFSET + 4] != b"HdrS":
            raise UserError(f"{path} is not an x86 bzImage (no HdrS boot header)")
        start = int.from_bytes(head[_VERSION_POINTER : _VERSION_POINTER + 2], "little") + 0x200
        text = head[start : head.index(b"\0", start)].decode(errors="replace")
        # "6.1.0 (user@host) #1 SMP PREEMPT_DYNAMIC <timestamp>"
        release, _, rest = text.partition(" ")
        version = rest.partition(") ")[2] or rest
        return cls(bzimage=path, release=release, build_id=version)


class VmState(BaseModel):
    """What any process needs to reach or restart a VM; state.json in the host dir."""

    port: int
    release: str
    build_id: str
    cmdline: str
    console_offset: int
    started_at: float


class QemuVm:
    """The files and process of one QEMU host. Cheap to create: all state is on disk."""

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.config = config
        self.qemu = config.qemu or QemuConfig()
        self.data_dir = data_dir
        self.dir = host_dir(config, data_dir)
        self.pidfile = self.dir / "qemu.pid"
        self.state_file = self.dir / "state.json"
        self.kernel_file = self.dir / "bzImage"
        self.initrd = self.dir / "initramfs.cpio.gz"
        self.swap = self.dir / "swap.img"
        self.root_disk = self.dir / "root.qcow2"
        self.host_key = self.dir / "dropbear_ed25519_host_key"
        self.console = console_path(config, data_dir)
        self.known_hosts = config.known_hosts or keys.known_hosts_path(data_dir)

    def state(self) -> VmState | None:
        try:
            return VmState.model_validate_json(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except ValidationError as exc:
            raise InfraError(f"{self.state_file} is corrupt; delete it: {exc}") from exc

    def pid(self) -> int | None:
        """The running QEMU's pid, checked against /proc so a reused pid is not ours."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if str(self.pidfile).encode() in cmdline else None

    def endpoint(self) -> SshEndpoint:
        state = self.state()
        if state is None:
            raise UserError(
                f"QEMU host {self.config.name} was never started",
                hint=f"farm hosts start {self.config.name} --kernel BZIMAGE",
            )
        return SshEndpoint(
            name=self.config.name,
            address=LOOPBACK,
            port=state.port,
            user="root",
            key=keys.client_key(self.data_dir),
            known_hosts=self.known_hosts,
            connect_timeout=self.config.connect_timeout,
            command_timeout=self.config.command_timeout,
            rekey_hint=(
                f"farm provisioned this VM's key itself, so another program may be "
                f"listening on port {state.port}: `farm hosts stop {self.config.name}`, "
                f"then `farm hosts start {self.config.name}` picks a port again"
            ),
        )

    def start(self, kernel: BootableKernel | None = None, cmdline: str = "") -> VmState:
        """Start the VM with ``kernel`` (or the last one); a running VM with no new
        kernel is left alone. Returns at once: the caller waits for SSH."""
        keys.private_dir(self.dir)  # the host key and the initramfs holding it live here
        with keys.locked(self.dir / "vm"):
            if kernel is None and self.pid():
                state = self.state()
                assert state is not None  # a running VM always has a state file
                return state
            self._stop_locked()
            previous = self.state()
            if kernel is not None:
                # The old state no longer describes bzImage: a failed start leaves none.
                self.state_file.unlink(missing_ok=True)
                self._install(kernel)
                release, build_id = kernel.release, kernel.build_id
            elif previous is not None and self.kernel_file.exists():
                release, build_id, cmdline = previous.release, previous.build_id, previous.cmdline
            else:
                raise UserError(
                    f"QEMU host {self.config.name} has no kernel to start yet",
                    hint=f"farm hosts start {self.config.name} --kernel BZIMAGE",
                )
            public = self.provision()
            full = f"{BASE_CMDLINE} {cmdline}".strip()
            state = self._launch(previous.port if previous else 0, full, release, build_id, public)
            keys.write_atomic(self.state_file, state.model_dump_json(indent=2).encode())
            return state

    def stop(self, grace: float = 0.0) -> None:
        """Power the VM off; with ``grace``, press its power button first and give the
        guest that long to shut down cleanly."""
        with keys.locked(self.dir / "vm"):
            self._stop_locked(grace)

    def status(self) -> str | None:
        """QEMU's own run state ("running", "paused", "internal-error", "shutdown"...),
        None when the VM is not running or QEMU does not answer."""
        if self.pid() is None:
            return None
        try:
            answer = self.qmp(lambda qmp: qmp.execute("query-status"))
        except InfraError:
            return None
        return str(answer["status"]) if isinstance(answer, dict) else None

    def reset(self) -> None:
        """The reset button: the guest reboots in the same QEMU (same port, same kernel).
        ``-no-reboot`` turns resets into exits, so resets are allowed until the firmware,
        which resets the machine again itself after a warm reset, has settled."""
        with keys.locked(self.dir / "vm"):
            state = self.state()
            if self.pid() is None or state is None:
                raise InfraError(f"QEMU host {self.config.name} is not running: nothing to reset")
            offset = self.console.stat().st_size if self.console.exists() else 0
            self.qmp(_reset, limit=QMP_SECONDS + RESET_SETTLE_SECONDS * 10)
            state = state.model_copy(update={"console_offset": offset, "started_at": time.time()})
            keys.write_atomic(self.state_file, state.model_dump_json(indent=2).encode())

    @property
    def qmp_socket(self) -> Path:
        """``qmp.sock`` in the host's directory, or, when that path is too long for a
        Unix socket, one in a private directory of the temp dir named after it."""
        beside = self.dir / "qmp.sock"
        if len(os.fsencode(beside)) <= _SUN_PATH_MAX:
            return beside
        digest = hashlib.sha256(os.fsencode(self.dir)).hexdigest()[:16]
        short = Path(tempfile.gettempdir()) / f"farm-qmp-{os.getuid()}" / f"{digest}.sock"
        keys.private_dir(short.parent)
        return short

    def qmp(self, script: Callable[[QMPClient], Awaitable[T]], limit: float = QMP_SECONDS) -> T:
        """Run ``script`` in a QMP session with this VM's QEMU, all of it within
        ``limit`` seconds; any failure to talk (or a QEMU that does not answer) is an
        InfraError."""

        async def session() -> T:
            client = QMPClient(self.config.name)
            try:
                await client.connect(str(self.qmp_socket))
                return await script(client)
            finally:
                with suppress(QMPError, OSError, EOFError):  # QEMU hangs up after "quit"
                    await client.disconnect()

        async def bounded() -> T:
            return await asyncio.wait_for(session(), limit)

        try:
            return asyncio.run(bounded())
        except (QMPError, OSError, EOFError, TimeoutError) as exc:
            raise InfraError(f"QMP of {self.config.name}'s QEMU failed: {exc!r}") from exc

    def _stop_locked(self, grace: float = 0.0) -> None:
        """ACPI power-off when ``grace``, then QMP ``quit``; SIGKILL only when QEMU no
        longer answers QMP."""
        steps = ((self._qmp_command("system_powerdown"), grace),) if grace else ()
        for action, wait in (*steps, (self._qmp_command("quit"), 10.0), (self._kill, 5.0)):
            if self.pid() is None:
                break
            try:
                action()
            except InfraError as exc:
                log.info("%s; trying harder", exc)
                continue
            deadline = time.monotonic() + wait
            while self.pid() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.pid():
            raise InfraError(f"QEMU of {self.config.name} (pid {self.pid()}) survived SIGKILL")
        self.pidfile.unlink(missing_ok=True)
        self.qmp_socket.unlink(missing_ok=True)

    def _qmp_command(self, command: str) -> Callable[[], None]:
        def send() -> None:
            self.qmp(lambda qmp: qmp.execute(command))

        return send

    def _kill(self) -> None:
        pid = self.pid()
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _install(self, kernel: BootableKernel) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.kernel_file.with_suffix(".part")
        try:
            shutil.copyfile(kernel.bzimage, tmp)
        except OSError as exc:
            raise UserError(f"cannot read kernel image {kernel.bzimage}: {exc.strerror}") from exc
        os.replace(tmp, self.kernel_file)
        if self.qemu.rootfs is not None:
            self.root_disk.unlink(missing_ok=True)  # every new kernel boots a pristine root

    def _root_overlay(self, image: Path) -> None:
        """A copy-on-write overlay of the root image: the image itself is never written."""
        if self.root_disk.exists():
            return
        try:
            info = subprocess.run(
                ["qemu-img", "info", "--output=json", str(image)],
                capture_output=True, text=True, check=True, timeout=60,
            )  # fmt: skip
            fmt = json.loads(info.stdout)["format"]
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b",
                 str(image.resolve()), str(self.root_disk)],
                capture_output=True, text=True, check=True, timeout=60,
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise InfraError("qemu-img is not installed (make apt installs qemu-utils)") from exc
        except subprocess.CalledProcessError as exc:
            raise UserError(
                f"QEMU host {self.config.name}: cannot use root image {image}: "
                f"{exc.stderr.strip()}",
                hint="qemu.rootfs names a disk image with an ext4 root on partition 1",
            ) from exc

    def provision(self) -> str:
        """Host key, initramfs and swap disk, private to farm's user; cheap enough to redo
        at every start. Returns the VM's public host key."""
        keys.private_dir(self.dir)
        public = keys.dropbear_host_key(self.host_key)
        rootfs = self.qemu.rootfs
        build_initramfs(
            self.initrd,
            host_key=self.host_key,
            authorized_keys=keys.client_public_key(self.data_dir) + "\n",
            hostname=self.config.name,
            openssh_host_key=keys.openssh_host_key(self.host_key) if rootfs else None,
        )
        if rootfs is not None:
            self._root_overlay(rootfs)
        size = self.qemu.swap_mb * 1024 * 1024
        if not self.swap.exists() or self.swap.stat().st_size != size:
            with self.swap.open("wb") as disk:
                disk.truncate(size)  # sparse: costs no disk until the guest swaps
        return public

    def _launch(
        self, previous_port: int, cmdline: str, release: str, build_id: str, public: str
    ) -> VmState:
        attempts = 1 if self.qemu.ssh_port else 3
        for attempt in range(attempts):
            port = self.qemu.ssh_port or free_port(previous_port if attempt == 0 else 0)
            pattern = keys.host_pattern(LOOPBACK, port)
            keys.record_host_key(self.known_hosts, pattern, public, f"farm-qemu:{self.config.name}")
            offset = self.console.stat().st_size if self.console.exists() else 0
            error = self._run_qemu(port, cmdline)
            if error is None:
                return VmState(
                    port=port,
                    release=release,
                    build_id=build_id,
                    cmdline=cmdline.removeprefix(BASE_CMDLINE).strip(),
                    console_offset=offset,
                    started_at=time.time(),
                )
            if "hostfwd" not in error and "host forwarding" not in error:
                break
        raise InfraError(f"QEMU for {self.config.name} did not start: {error}")

    def argv(self, port: int, cmdline: str) -> list[str]:
        q = self.qemu
        root: list[str] = []
        if q.rootfs is not None:  # the second disk, /dev/vdb: the swap disk stays vda
            cmdline = f"{cmdline} farm.root=/dev/vdb1"
            root = ["-drive", f"file={self.root_disk},format=qcow2,if=virtio,cache=unsafe"]
        return [
            QEMU, "-name", f"farm-{self.config.name}", *accel_args(q.accel, QEMU, q.extra_args),
            "-m", str(q.memory_mb), "-smp", str(q.cpus),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-daemonize", "-pidfile", str(self.pidfile), "-no-reboot",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-kernel", str(self.kernel_file), "-initrd", str(self.initrd), "-append", cmdline,
            "-chardev", f"file,id=console,path={self.console},append=on",
            "-serial", "chardev:console",
            "-netdev", f"user,id=net0,hostfwd=tcp:{LOOPBACK}:{port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
            "-drive", f"file={self.swap},format=raw,if=virtio,cache=unsafe",
            *root,
            *q.extra_args,
        ]  # fmt: skip

    def _run_qemu(self, port: int, cmdline: str) -> str | None:
        """Start QEMU; None when it is running, else its error message."""
        log = self.dir / "qemu.log"
        argv = self.argv(port, cmdline)
        # A file, not a pipe, and a session of its own: the VM outlives this process
        # and must not hold its pipes or get its terminal's signals.
        with log.open("wb") as out:
            out.write(f"# {shlex.join(argv)}\n".encode())
            out.flush()
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                    timeout=60,
                    check=False,
                )
            except FileNotFoundError:
                return f"{QEMU} is not installed (make apt installs qemu-system-x86)"
            except subprocess.TimeoutExpired:
                return "QEMU did not daemonize within 60 s"
        if done.returncode == 0 and self.pid():
            return None
        output = log.read_text(errors="replace").partition("\n")[2].strip()
        return output or f"exit {done.returncode}"


async def _reset(qmp: QMPClient) -> None:
    """system_reset with resets allowed until the firmware has settled: after a warm
    reset it resets the machine itself, which ``-no-reboot`` would turn into an exit."""
    await qmp.execute("set-action", {"reboot": "reset"})
    try:
        with qmp.listener("RESET") as resets:
            await qmp.execute("system_reset")
            while True:  # until no RESET for RESET_SETTLE_SECONDS
                try:
                    await asyncio.wait_for(resets.get(), RESET_SETTLE_SECONDS)
                except TimeoutError:
                    break
    finally:
        await qmp.execute("set-action", {"reboot": "shutdown"})


def free_port(preferred: int) -> int:
    """``preferred`` if it is free on loopback, else one the kernel picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            bound: int = sock.getsockname()[1]
            return bound
    raise InfraError("no free TCP port on 127.0.0.1 for a QEMU host")


class QemuBoot(BootMethod):
    """Booting a VM is starting QEMU with ``-kernel``: nothing to install in the guest."""

    name = "qemu"

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.vm = QemuVm(config, data_dir)

    def install(self, kernel: BootableKernel, cmdline: str) -> None:
        self.vm.start(kernel, cmdline)

    def problems(self) -> list[str]:
        missing = [tool for tool in (QEMU, "dropbearkey", "ssh-keygen") if not shutil.which(tool)]
        return [f"{tool} is not installed on the controller (make apt)" for tool in missing]


class QemuHost(RemoteHost):
    """A QEMU VM: reached on its forwarded loopback port with farm's own keys."""

    @property
    def vm(self) -> QemuVm:
        return QemuVm(self.config, self.data_dir)

    def endpoint(self) -> SshEndpoint:
        return self.vm.endpoint()

    def _boot_console_offset(self) -> int:
        state = self.vm.state()
        return state.console_offset if state else super()._boot_console_offset()
