# SPDX-License-Identifier: Apache-2.0
"""A real machine's own kernel configuration, as a kernel developer reduces it.

The disk VM runs Debian 12's kernel; farm reads its running config and lsmod over SSH
(kernel_config = "host"), builds the soak kernel from it with ``make localmodconfig``
and the soak fragment (modules and all, cached under the farm cache like the other test
kernels), installs kernel, modules and an initramfs made by the VM's own
update-initramfs, boots it once, sees its release, a module it loaded (ata_piix: the
root disk needs it, so the initramfs worked) and falls back to Debian's kernel.

A clean build of this config takes 15 min on two cores with nothing beside it (900 s;
a rebuild after touching one mm/ file 38 s: benchmarks/build_localmodconfig.py), more
than CI's headroom, so `make test` skips it unless FARM_TEST_LOCALMODCONFIG=1; later
runs reuse the cached build and take about two minutes (install, boot, fall back).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from diskvm import Image, ensure_image
from kernel_fixtures import KernelBuildEnv
from test_metal import DiskVmHosts

from farm.build import KernelArtifacts, build_kernel
from farm.build.kconfig import default_fragment, parse_config, read_fragment
from farm.build.tree import BASE_TAG, farm_cache_dir
from farm.config import FarmConfig, KernelConfigSource, MetalConfig
from farm.hosts import get_host
from farm.hosts.kconfig_source import host_base_config
from farm.hosts.remote import RemoteHost

pytestmark = [
    pytest.mark.slow, pytest.mark.kernel, pytest.mark.qemu, pytest.mark.metal,
    pytest.mark.timeout(3 * 3600),  # the clean build beside other work: 30-40 min seen
    pytest.mark.skipif(
        os.environ.get("FARM_TEST_LOCALMODCONFIG") != "1",
        reason="a clean localmodconfig build takes 15 min here: FARM_TEST_LOCALMODCONFIG=1",
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def image() -> Image:
    return ensure_image(progress=print)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, image: Image) -> Iterator[RemoteHost]:
    vm = DiskVmHosts(tmp_path_factory.mktemp("localmodconfig"), image)
    plain = vm.host("grub")
    config = plain.config.model_copy(
        update={
            "kernel_config": KernelConfigSource(kind="host"),
            "metal": MetalConfig(initramfs="auto"),
        }
    )
    host = get_host(FarmConfig(data_dir=vm.data_dir, hosts=[config]), "metal")
    assert isinstance(host, RemoteHost)
    host.power.on()
    try:
        yield host
    finally:
        host.power.off()


@pytest.fixture(scope="module")
def kernel(host: RemoteHost, kernel_build_env: KernelBuildEnv) -> KernelArtifacts:
    host.wait_ready()
    with host.transport() as ssh:
        base = host_base_config(host.config, host.data_dir, ssh)
    return build_kernel(
        kernel_build_env.tree,
        BASE_TAG,
        data_dir=farm_cache_dir() / "test-builds",
        cache_dir=kernel_build_env.cache_dir,
        base=base,
        progress=print,
    )


def test_the_reduced_config_keeps_the_machines_modules_and_the_soak_options(
    kernel: KernelArtifacts,
) -> None:
    config = parse_config(kernel.config.read_text())
    assert kernel.modules and kernel.modules_tarball is not None
    # The machine's disk driver stays a module; what the soak fragment asks for is built
    # in (Debian has ext4 and virtio-net as modules; the fragment wants them =y).
    assert (config["CONFIG_MODULES"], config["CONFIG_ATA_PIIX"], config["CONFIG_EXT4_FS"]) == (
        "y", "m", "y",
    )  # fmt: skip
    wanted = read_fragment(default_fragment())
    for name in ("CONFIG_DEBUG_VM", "CONFIG_DEBUG_LIST", "CONFIG_KALLSYMS_ALL"):
        assert config.get(name) == wanted[name], name
    assert "localmodconfig" in Path(kernel.metadata).read_text()


def test_the_kernel_boots_once_with_its_modules_and_the_machine_falls_back(
    host: RemoteHost, kernel: KernelArtifacts, image: Image
) -> None:
    booted = host.boot(kernel)
    assert booted.release == kernel.release
    with host.transport() as ssh:
        assert ssh.run(["uname", "-r"]).stdout.strip() == kernel.release
        loaded = [line.split()[0] for line in ssh.run(["cat", "/proc/modules"]).stdout.splitlines()]
        assert "ata_piix" in loaded  # the root disk's driver came from the initramfs
        assert ssh.run(["test", "-d", f"/lib/modules/{kernel.release}/kernel"]).ok
    host.power.cycle()
    assert host.wait_ready().release == image.default_release.read_text().strip()
