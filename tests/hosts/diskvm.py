# SPDX-License-Identifier: Apache-2.0
"""A disk-booted Debian 12 VM that stands in for a bare-metal machine in the tests.

The image is made once per recipe and cached under ``~/.cache/farm/diskvm-<hash>/``:
debootstrap bookworm (kernel, grub-pc, sshd, systemd, kexec-tools, sudo, and procps
and stress-ng for the QEMU hosts that boot it as their root file system) into a
directory, configure it (a ``farm`` user with passwordless sudo and a key made for the
image, GRUB_DEFAULT=saved, a serial console, ramoops in a reserved MiB of RAM so a crash
survives the reboot), copy it into an ext4 partition of an MBR disk with ``mke2fs -d``
(no loop device, no mount), then boot it once with its own kernel and ``init=`` a script
that runs ``grub-install`` and ``update-grub`` from inside and powers off. After that the
disk boots through grub like any PC. Tests run on a qcow2 overlay, never on the cache.

Run as a script, it is the ``command`` power plugin's switch of a test VM:
``python diskvm.py on|off DIR`` starts QEMU from ``DIR/disk.qcow2`` (TCG, no
``-kernel``, no ``-no-reboot``: a panic reboots into the default kernel) or kills it;
``python diskvm.py prepare`` makes the cached image (``make test`` runs it in the
background, so debootstrap's downloads overlap the first kernel build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from farm.build.tree import farm_cache_dir, file_lock
from farm.config import HostConfig, QemuConfig
from farm.hosts.qemu import QemuVm

SUITE = "bookworm"
PACKAGES = (
    "systemd-sysv,udev,linux-image-amd64,grub-pc,openssh-server,kexec-tools,sudo,iproute2,"
    "procps,stress-ng"
)
USER = "farm"
MEMORY_MB = 1024
DISK_MB = 2048
PART_OFFSET = 1 << 20
# ramoops: 1 MiB of RAM at 128 MiB reserved by memmap=, which QEMU keeps across a
# reset; both the Debian kernel and the test kernel use it. Not near the top of RAM:
# grub reads the kernel and initrd files there and overwrites it before Linux starts.
RAMOOPS = (
    "memmap=1M\\\\\\$0x08000000 ramoops.mem_address=0x08000000 ramoops.mem_size=0x100000 "
    "ramoops.record_size=0x20000"
)
FILES: dict[str, str] = {
    "etc/hostname": "farm-diskvm\n",
    "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 farm-diskvm\n",
    "etc/fstab": "/dev/vda1 / ext4 errors=remount-ro 0 1\n",
    "etc/default/grub": (
        "GRUB_DEFAULT=saved\nGRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Debian\n"
        'GRUB_CMDLINE_LINUX_DEFAULT=""\n'
        f'GRUB_CMDLINE_LINUX="console=ttyS0,115200 {RAMOOPS}"\n'
        'GRUB_TERMINAL=serial\nGRUB_SERIAL_COMMAND="serial --speed=115200"\n'
        # root=/dev/vda1: farm's test kernel boots without an initramfs.
        "GRUB_DISABLE_LINUX_UUID=true\nGRUB_DISABLE_OS_PROBER=true\n"
    ),
    "etc/systemd/network/50-farm.network": "[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n",
    "etc/systemd/journald.conf.d/farm.conf": "[Journal]\nStorage=persistent\n",
    "etc/modules-load.d/farm-ramoops.conf": "ramoops\n",
    "etc/sudoers.d/farm": f"{USER} ALL=(root) NOPASSWD: ALL\n",
    "usr/local/sbin/farm-prep": """#!/bin/sh
# The image's first boot, as init: install grub on the disk it booted from, power off.
mount -t proc proc /proc 2>/dev/null; mount -t sysfs sys /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
mount -o remount,rw /
grub-install --target=i386-pc /dev/vda && update-grub && echo FARM-PREP-OK
sync; mount -o remount,ro /; sync
echo o > /proc/sysrq-trigger
sleep 60  # init must not exit before the power-off: that would be a panic
""",
}
CHROOT = (
    f"useradd -m -s /bin/bash {USER}",
    "systemctl enable systemd-networkd",
    "systemctl mask systemd-networkd-wait-online.service",
    "mkdir -p /var/log/journal",
    "chmod 0440 /etc/sudoers.d/farm",
    "chmod 0755 /usr/local/sbin/farm-prep",
)


def recipe_hash() -> str:
    recipe = {"suite": SUITE, "packages": PACKAGES, "files": FILES, "chroot": CHROOT, "v": 1}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def mirror() -> str:
    """The Debian mirror apt uses here (deb822 sources), else deb.debian.org."""
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line[:20])
            suites = fields.get("Suites", "").split()
            if SUITE in suites and "URIs" in fields:
                return fields["URIs"].split()[0]
    return "http://deb.debian.org/debian"


class Image:
    """The cached image: base.qcow2, the key farm logs in with, the VM's host key."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.disk = directory / "base.qcow2"
        self.key = directory / "id_ed25519"
        self.host_key = directory / "ssh_host_ed25519_key.pub"
        self.default_release = directory / "default-release"

    @property
    def ready(self) -> bool:
        return self.disk.exists() and self.default_release.exists()

    def overlay(self, target: Path) -> Path:
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(self.disk),
             str(target)],
            check=True,
        )  # fmt: skip
        return target


def ensure_image(progress: object = print) -> Image:
    """The cached image, built first if this recipe has none yet (minutes)."""
    say = progress if callable(progress) else print
    image = Image(farm_cache_dir() / f"diskvm-{recipe_hash()}")
    with file_lock(image.dir.with_suffix(".lock")):
        if not image.ready:
            started = time.monotonic()
            _build(image, say)
            say(f"diskvm image built in {time.monotonic() - started:.0f}s: {image.disk}")
    return image


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def _build(image: Image, say: object) -> None:
    log = say if callable(say) else print
    work = image.dir.with_name(image.dir.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root, raw = work / "root", work / "disk.raw"
    debs = farm_cache_dir() / "diskvm-debs"
    debs.mkdir(parents=True, exist_ok=True)
    log(f"diskvm: debootstrap {SUITE} from {mirror()} (a few minutes)")
    _run(
        ["nice", "-n", "10", "debootstrap", "--variant=minbase", f"--cache-dir={debs}",
         f"--include={PACKAGES}", SUITE, str(root), mirror()],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    _configure(image, root)
    log("diskvm: ext4 partition with mke2fs -d, MBR, first boot to install grub")
    with raw.open("wb") as disk:
        disk.truncate(PART_OFFSET + DISK_MB * (1 << 20))
    _run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "farmroot", "-E", f"offset={PART_OFFSET}",
         "-d", str(root), str(raw), f"{DISK_MB}M"],
    )  # fmt: skip
    _write_mbr(raw, DISK_MB * (1 << 20) // 512)
    _prep_boot(work, root, raw)
    image.dir.mkdir(parents=True, exist_ok=True)
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(image.disk)])
    image.default_release.write_text(next((root / "lib" / "modules").iterdir()).name + "\n")
    shutil.rmtree(work)


def _configure(image: Image, root: Path) -> None:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for command in CHROOT:
        _run(["chroot", str(root), "sh", "-c", command], stdout=subprocess.DEVNULL)
    image.dir.mkdir(parents=True, exist_ok=True)
    image.key.unlink(missing_ok=True)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "farm-diskvm", "-f",
          str(image.key)])  # fmt: skip
    ssh = root / "home" / USER / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "authorized_keys").write_text(Path(f"{image.key}.pub").read_text())
    uid_gid = (root / "home" / USER).stat()
    for path in (ssh, ssh / "authorized_keys"):
        os.chown(path, uid_gid.st_uid, uid_gid.st_gid)
    shutil.copyfile(root / "etc/ssh/ssh_host_ed25519_key.pub", image.host_key)


def _write_mbr(raw: Path, sectors: int) -> None:
    """One bootable Linux partition from 1 MiB on: what fdisk would write."""
    entry = bytes([0x80, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF])
    entry += (PART_OFFSET // 512).to_bytes(4, "little") + sectors.to_bytes(4, "little")
    with raw.open("r+b") as disk:
        disk.seek(0x1B8)
        disk.write(os.urandom(4) + b"\0\0" + entry + bytes(48) + b"\x55\xaa")


def _prep_boot(work: Path, root: Path, raw: Path) -> None:
    kernel = next(root.glob("boot/vmlinuz-*"))
    initrd = next(root.glob("boot/initrd.img-*"))
    console = work / "prep-console.log"
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-m", str(MEMORY_MB), "-nodefaults",
        "-display", "none", "-no-reboot", "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", "root=/dev/vda1 ro console=ttyS0,115200 panic=1 init=/usr/local/sbin/farm-prep",
        "-drive", f"file={raw},format=raw,if=virtio", "-serial", f"file:{console}",
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=900, stdin=subprocess.DEVNULL)
    if "FARM-PREP-OK" not in console.read_text(errors="replace"):
        tail = console.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"diskvm: grub-install in the first boot failed:\n{tail}")


class DiskVm(QemuVm):
    """One test VM booting from ``<data_dir>/hosts/<name>/disk.qcow2`` on a fixed port."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            HostConfig(name=directory.name, kind="qemu", qemu=QemuConfig(memory_mb=MEMORY_MB)),
            directory.parent.parent,
        )
        self.disk = self.dir / "disk.qcow2"
        self.port_file = self.dir / "ssh-port"

    def argv(self, port: int, cmdline: str) -> list[str]:
        return [
            "qemu-system-x86_64", "-name", f"farm-{self.config.name}", "-accel", "tcg",
            "-m", str(MEMORY_MB), "-nodefaults", "-no-user-config", "-display", "none",
            "-daemonize", "-pidfile", str(self.pidfile),
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-drive", f"file={self.disk},format=qcow2,if=virtio,cache=unsafe",
            "-chardev", f"file,id=console,path={self.console},append=on",
            "-serial", "chardev:console",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
        ]  # fmt: skip

    def power_on(self) -> None:
        if self.pid():
            return
        error = self._run_qemu(int(self.port_file.read_text()), "")
        if error:
            raise SystemExit(f"diskvm: QEMU did not start: {error}")


def main(argv: list[str]) -> None:
    if argv[1:] == ["prepare"]:  # `make test` makes the image while kernels build
        ensure_image(progress=print)
    elif len(argv) == 3 and argv[1] in ("on", "off"):
        vm = DiskVm(Path(argv[2]))
        vm.power_on() if argv[1] == "on" else vm.stop()
    else:
        raise SystemExit(f"usage: {argv[0]} prepare | on DIR | off DIR")


if __name__ == "__main__":
    main(sys.argv)
