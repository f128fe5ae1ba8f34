# SPDX-License-Identifier: Apache-2.0
"""A QEMU host with a real userland: farm's test kernel boots the Debian image of the
bare-metal tests (diskvm.py: systemd, OpenSSH, procps, stress-ng) as its root file
system, on a copy-on-write overlay, with farm's keys put in by the initramfs; the
loads then run their real programs in the VM. stress-ng-vm, which ends INFRA on the
busybox hosts, passes here, and so do the kernel's own mm selftests built from the tree
the test kernel was built from.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diskvm import Image, ensure_image
from kernel_fixtures import KernelBuildEnv

from farm.build import KernelArtifacts
from farm.build.selftests import build_selftests
from farm.config import FarmConfig, HostConfig, QemuConfig
from farm.hosts import get_host
from farm.hosts.qemu import QemuVm
from farm.hosts.remote import RemoteHost
from farm.loads import get_load
from farm.soak import load as load_mod
from farm.soak.sampler import take_sample
from farm.soak.selftests import judge, parse_results, read_results

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
    # Pressure stall information (CONFIG_PSI in soak.config): the group's reclaim stalls.
    assert {f"psi:{r}_some_total_us" for r in ("memory", "io", "cpu")} <= set(reading.mm)
    assert reading.mm["psi:memory_some_total_us"] > 0


def test_the_mm_selftests_built_from_the_tree_under_test_pass(
    host: RemoteHost,
    config: FarmConfig,
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,
    tmp_path: Path,
) -> None:
    load = get_load(config, "mm-selftests")
    assert load.selftests is not None
    built = build_selftests(
        kernel_build_env.tree, soak_kernel.commit, data_dir=config.data_dir,
        target=load.selftests.target, programs=load.selftests.programs,
        cache_dir=kernel_build_env.cache_dir, progress=print,
    )  # fmt: skip
    remote = "/var/tmp/farm"
    with host.transport() as ssh:
        load_mod.start(
            ssh, load=load, run_id=3, seconds=1, remote_dir=remote,
            cache_dir=tmp_path / "bins", selftests=built,
        )  # fmt: skip
        deadline = time.monotonic() + 900  # one round, whatever its length
        status = ""
        while time.monotonic() < deadline and not status:
            status = ssh.run(f"cat {remote}/run-3/exit 2>/dev/null || true").stdout.strip()
            time.sleep(5)
        output = ssh.run(f"cat {remote}/run-3/out.log {remote}/run-3/selftests-1.log").stdout
        results = parse_results(read_results(ssh, f"{remote}/run-3"))
    assert status == "0", output
    tally, findings, notes = judge(results, cut_short=False)
    assert findings == [], output  # the selftests' part of the verdict: PASS
    assert tally.rounds == 1 and tally.failed == 0 and tally.skipped == 0
    # Every program ran and passed (userfaultfd twice: anonymous and shmem memory).
    assert tally.ok == len(results) > len(load.selftests.programs)
    assert {r.name.split()[2] for r in results} == set(load.selftests.programs)
    assert "round 1: " in output and notes == []
