# SPDX-License-Identifier: Apache-2.0
"""A QEMU host with a real userland: farm's test kernel boots the Debian image of the
bare-metal tests (diskvm.py: systemd, OpenSSH, procps, stress-ng) as its root file
system, on a copy-on-write overlay, with farm's keys put in by the initramfs; the
loads then run their real programs in the VM. stress-ng-vm, which ends INFRA on the
busybox hosts, passes here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diskvm import Image, ensure_image

from farm.build import KernelArtifacts
from farm.config import FarmConfig, HostConfig, QemuConfig
from farm.hosts import get_host
from farm.hosts.qemu import QemuVm
from farm.hosts.remote import RemoteHost
from farm.loads import get_load
from farm.soak import load as load_mod
from farm.soak.sampler import take_sample

pytestmark = [pytest.mark.slow, pytest.mark.kernel, pytest.mark.qemu, pytest.mark.metal]


@pytest.fixture(scope="module")
def image() -> Image:
    return ensure_image(progress=print)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, image: Image) -> FarmConfig:
    qemu = QemuConfig(memory_mb=768, cpus=2, rootfs=image.disk, accel="tcg")
    entry = HostConfig(name="debian", kind="qemu", qemu=qemu, boot_timeout=600)
    return FarmConfig(data_dir=tmp_path_factory.mktemp("rootfs") / "data", hosts=[entry])


@pytest.fixture(scope="module")
def host(config: FarmConfig, soak_kernel: KernelArtifacts) -> Iterator[RemoteHost]:
    host = get_host(config, "debian")
    assert isinstance(host, RemoteHost)
    try:
        host.boot(soak_kernel)
        yield host
    finally:
        QemuVm(config.host("debian"), config.data_dir).stop()


def test_the_test_kernel_runs_debians_own_init_and_sshd(
    host: RemoteHost, soak_kernel: KernelArtifacts, image: Image
) -> None:
    with host.transport() as ssh:
        assert ssh.run(["uname", "-r"]).stdout.strip() == soak_kernel.release
        assert ssh.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
        assert ssh.run(["hostname"]).stdout.strip() == "debian"
        assert "/dev/vdb1 / ext4" in ssh.run(["cat", "/proc/mounts"]).stdout
        assert "/dev/vda" in ssh.run(["cat", "/proc/swaps"]).stdout
        assert ssh.run(["stress-ng", "--version"]).ok
    assert image.disk.stat().st_size > 0  # the image itself was only read: the VM has an overlay


def test_stress_ng_vm_runs_its_real_program_and_passes(
    host: RemoteHost, config: FarmConfig, tmp_path: Path
) -> None:
    load = get_load(config, "stress-ng-vm")
    remote = "/var/tmp/farm"
    with host.transport() as ssh:
        load_mod.start(
            ssh, load=load, run_id=1, seconds=20, remote_dir=remote, cache_dir=tmp_path / "bins"
        )
        deadline = time.monotonic() + 300
        status = ""
        while time.monotonic() < deadline and not status:
            status = ssh.run(f"cat {remote}/run-1/exit 2>/dev/null || true").stdout.strip()
            time.sleep(2)
        output = ssh.run(["cat", f"{remote}/run-1/out.log"]).stdout
    assert status == "0", output
    assert "successful run completed" in output


def test_a_sample_shows_the_memcg_of_the_load_its_free_blocks_and_slab(
    host: RemoteHost, config: FarmConfig, tmp_path: Path
) -> None:
    load = get_load(config, "memcg-pressure")
    remote = "/var/tmp/farm"
    with host.transport() as ssh:
        load_mod.start(
            ssh, load=load, run_id=2, seconds=40, remote_dir=remote, cache_dir=tmp_path / "bins"
        )
        time.sleep(15)  # the load has put itself in its cgroup and filled it
        reading, pulse = take_sample(ssh, run_dir=f"{remote}/run-2", timeout=60)
        load_mod.stop(ssh, run_id=2, remote_dir=remote)
    assert pulse is not None and pulse.alive
    assert reading.mm["memcg:anon"] > 0
    assert any(key.startswith("buddy:") for key in reading.mm)
    assert reading.mm["slab:total"] > 0  # root reads /proc/slabinfo
