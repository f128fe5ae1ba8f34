# SPDX-License-Identifier: Apache-2.0
"""A disk-booted Debian VM treated exactly as a bare-metal machine (see diskvm.py).

farm reaches it over SSH as the sudo user ``farm``, installs its test kernel into
/boot/farm, boots it once with grub-reboot, and power-cycles it through the
``command`` plugin, whose templates start and kill the VM's QEMU. A crash of the test
kernel reboots the VM (panic=N, no -no-reboot) into its default Debian kernel, which
finds the crash in pstore (ramoops in reserved RAM that survives QEMU's reset).
"""

from __future__ import annotations

import shlex
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from diskvm import Image, ensure_image
from netutil import free_port
from test_netconsole import free_udp_port

from farm.build import KernelArtifacts
from farm.config import ConsoleConfig, FarmConfig, HostConfig, MetalConfig, PowerConfig
from farm.detect.crash import parse
from farm.errors import KernelError, UserError
from farm.hosts import CommandTimeout, HostUnreachable, get_host, keys
from farm.hosts.aftermath import collect_aftermath
from farm.hosts.install import FARM_BOOT, Root
from farm.hosts.netconsole import DEFAULT_PORT, Listener
from farm.hosts.remote import RemoteHost
from farm.hosts.ssh import connect

pytestmark = [pytest.mark.slow, pytest.mark.kernel, pytest.mark.qemu, pytest.mark.metal]
REPO = Path(__file__).resolve().parents[2]
DISKVM = Path(__file__).with_name("diskvm.py")


@pytest.fixture(scope="module")
def image() -> Image:
    return ensure_image(progress=print)


@pytest.fixture(scope="module")
def metal_kernel(soak_kernel: KernelArtifacts) -> KernelArtifacts:
    """The base commit with soak.config, the one test kernel every test shares: it boots
    the VM's disk without an initramfs, as it boots the QEMU hosts."""
    return soak_kernel


class DiskVmHosts:
    """One VM for the module (a fresh overlay of the image) and farm's view of it,
    as a user would write it in farm.toml, with either one-shot boot method."""

    def __init__(self, tmp_path: Path, image: Image) -> None:
        self.data_dir = tmp_path / "data"
        self.dir = self.data_dir / "hosts" / "metal"
        self.dir.mkdir(parents=True)
        image.overlay(self.dir / "disk.qcow2")
        self.port = free_port()
        (self.dir / "ssh-port").write_text(f"{self.port}\n")
        public = " ".join(image.host_key.read_text().split()[:2])
        known_hosts = keys.known_hosts_path(self.data_dir)
        keys.record_host_key(known_hosts, f"[127.0.0.1]:{self.port}", public, "diskvm")
        self.image = image

    def host(
        self, boot: Literal["grub", "kexec"], console: ConsoleConfig | None = None
    ) -> RemoteHost:
        switch = shlex.join([sys.executable, str(DISKVM)])
        where = shlex.quote(str(self.dir))
        entry = HostConfig(
            name="metal",
            kind="ssh",
            address="127.0.0.1",
            port=self.port,
            user="farm",
            key=self.image.key,
            boot=boot,
            power=PowerConfig(
                kind="command", on=f"{switch} on {where}", off=f"{switch} off {where}", timeout=60
            ),
            console=console or ConsoleConfig(),
            # netconsole holds the kernel's eth0 up from boot: udev must not rename it.
            metal=MetalConfig(initramfs="none", cmdline="net.ifnames=0" if console else ""),
            boot_timeout=900,
            command_timeout=120,
        )
        host = get_host(FarmConfig(data_dir=self.data_dir, hosts=[entry]), "metal")
        assert isinstance(host, RemoteHost)
        return host


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory, image: Image) -> Iterator[DiskVmHosts]:
    hosts = DiskVmHosts(tmp_path_factory.mktemp("metal"), image)
    power = hosts.host("grub").power
    power.on()
    try:
        yield hosts
    finally:
        power.off()


@pytest.fixture
def grub_host(vm: DiskVmHosts) -> Iterator[RemoteHost]:
    yield vm.host("grub")
    console = vm.dir / "console.log"
    if console.exists():  # pytest shows it when the test failed
        print(console.read_text(errors="replace")[-6000:])


def _crash(host: RemoteHost, release: str) -> None:
    """sysrq-c, after checking that we talk to the VM's test kernel, not to this machine."""
    with host.transport() as ssh:
        assert ssh.run(["uname", "-r"]).stdout.strip() == release
        with pytest.raises((HostUnreachable, CommandTimeout)):
            ssh.run(["sudo", "-n", "sh", "-c", "echo c > /proc/sysrq-trigger"], timeout=60)


def test_a_user_without_passwordless_sudo_is_told_the_sudoers_line(vm: DiskVmHosts) -> None:
    host = vm.host("grub")
    host.wait_ready()
    with host.transport() as ssh:  # a second user with farm's key, and no sudo rule
        ssh.run(
            ["sudo", "-n", "sh", "-c", "id guest >/dev/null 2>&1 || useradd -m guest; "
             "install -d -o guest -m 700 /home/guest/.ssh && "
             "install -o guest -m 600 /home/farm/.ssh/authorized_keys /home/guest/.ssh/"]
        )  # fmt: skip
    guest = connect(replace(host.endpoint(), user="guest"))
    with guest, pytest.raises(UserError) as refused:
        Root(guest, user="guest", host="metal").run(["true"])
    assert "guest@metal cannot run commands as root without a password" in str(refused.value)
    assert "echo 'guest ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/farm" in str(refused.value)


def test_a_test_kernel_boots_once_crashes_and_the_machine_falls_back_to_its_default(
    grub_host: RemoteHost, metal_kernel: KernelArtifacts, image: Image
) -> None:
    default = image.default_release.read_text().strip()
    first = grub_host.wait_ready()
    assert first.release == default

    booted = grub_host.boot(metal_kernel)
    assert booted.release == metal_kernel.release and "-farm" in booted.release
    assert metal_kernel.build_id in booted.version
    with grub_host.transport() as ssh:
        grubenv = ssh.run(["sudo", "-n", "grub-editenv", "list"]).stdout
        cmdline = ssh.run(["cat", "/proc/cmdline"]).stdout.split()
        installed = ssh.run(["ls", FARM_BOOT]).stdout.split()
    assert f"next_entry=farm-{booted.release}" not in grubenv  # one boot only
    assert "saved_entry" not in grubenv  # the default was never touched
    assert "panic=10" in cmdline and "root=/dev/vda1" in cmdline
    assert f"vmlinuz-{booted.release}" in installed

    _crash(grub_host, booted.release)
    back = grub_host.wait_ready()
    assert back.release == default and back.boot_id != booted.boot_id

    evidence = grub_host.aftermath()
    assert evidence is not None and evidence.pstore, evidence
    titles = [crash.title for crash in evidence.crashes()]
    assert "kernel panic: sysrq triggered crash" in titles, evidence.text[-3000:]
    with grub_host.transport() as ssh:  # collected once: the records are gone
        assert not collect_aftermath(ssh, user="farm").pstore

    grub_host.power.cycle()
    again = grub_host.wait_ready()
    assert again.release == default and again.boot_id != back.boot_id


def test_a_test_kernel_that_cannot_boot_is_the_kernels_failure_with_the_evidence(
    grub_host: RemoteHost, metal_kernel: KernelArtifacts
) -> None:
    grub_host.wait_ready()
    with pytest.raises(KernelError) as failed:
        grub_host.boot(metal_kernel, cmdline="root=/dev/farm-no-such-disk")
    message = str(failed.value)
    assert f"not the kernel farm booted ({metal_kernel.release}" in message
    assert "Unable to mount root fs" in message  # from pstore, read on the default kernel


def test_kexec_boots_the_test_kernel_without_grub_and_its_crash_reaches_farm_netconsole(
    vm: DiskVmHosts, metal_kernel: KernelArtifacts, image: Image
) -> None:
    host = vm.host("kexec", ConsoleConfig(kind="netconsole", port=free_udp_port()))
    listener = Listener([host.config], vm.data_dir, bind="127.0.0.1", port=DEFAULT_PORT)
    stop = threading.Event()
    thread = threading.Thread(target=listener.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        default = image.default_release.read_text().strip()
        assert host.wait_ready().release == default

        booted = host.boot(metal_kernel, cmdline="farm.via=kexec")
        assert booted.release == metal_kernel.release
        with host.transport() as ssh:
            cmdline = ssh.run(["cat", "/proc/cmdline"]).stdout.split()
        # QEMU's user network: the guest sends from 10.0.2.15 to 10.0.2.2, this machine.
        port = host.config.console.port
        assert cmdline[-4:] == [
            "net.ifnames=0", "farm.via=kexec", f"netconsole=+@10.0.2.15/,{port}@10.0.2.2/",
            "panic=10",
        ]  # fmt: skip

        _crash(host, booted.release)
        assert host.wait_ready().release == default
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()
    sent = (vm.data_dir / "hosts" / "metal" / "netconsole.log").read_text(errors="replace")
    assert "kernel panic: sysrq triggered crash" in [c.title for c in parse(sent)]
    evidence = host.aftermath()
    assert evidence is not None
    assert "kernel panic: sysrq triggered crash" in [c.title for c in evidence.crashes()]
