# SPDX-License-Identifier: Apache-2.0
"""Two QEMU hosts, `laptop` and `workstation`, booting a real kernel built by farm.build.

The kernel is linux-source 6.1 with a one-patch series applied by farm's intake (an
incremental build on top of the session's soak kernel). Both VMs boot it concurrently
once per module; the tests then read them over SSH, power cycle one and crash the
other. Every QEMU started here is killed in teardown.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv

from farm.build import KernelArtifacts
from farm.build.tree import BASE_TAG
from farm.config import FarmConfig, load_config
from farm.errors import KernelError
from farm.git import git
from farm.hosts import BootedKernel, HostKeyError, HostUnreachable, get_host, keys
from farm.hosts.qemu import QemuHost, QemuVm
from farm.intake.apply import Worktree, apply_patches
from farm.intake.mbox import read_mails
from farm.intake.series import group_series

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel]
FARM = [sys.executable, "-m", "farm"]
NAMES = ("laptop", "workstation")


PATCHED = "mm/swap_state.c"


def one_patch_mbox(tree: Path) -> str:
    """A [PATCH] mail adding a comment to an mm/ file: the build id tells it apart."""
    old = git(tree, "show", f"{BASE_TAG}:{PATCHED}").splitlines(keepends=True)
    new = [old[0], "/* farm: the hosts test boots this patched kernel */\n", *old[1:]]
    diff = "".join(difflib.unified_diff(old, new, f"a/{PATCHED}", f"b/{PATCHED}", n=3))
    return (
        "From farm Mon Jan  1 00:00:00 2024\n"
        "From: Farm Test <farm@example.org>\n"
        "Subject: [PATCH] mm/swap_state: mark the kernel the hosts test boots\n"
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <hosts-test.1@farm.example.org>\n\n"
        "A comment only.\n\nSigned-off-by: Farm Test <farm@example.org>\n---\n"
        f"diff --git a/{PATCHED} b/{PATCHED}\n{diff}-- \n2.39.2\n\n"
    )


@pytest.fixture(scope="module")
def patched_kernel(
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,  # built first, so this one is incremental
    tmp_path_factory: pytest.TempPathFactory,
) -> KernelArtifacts:
    root = tmp_path_factory.mktemp("series")
    (root / "series.mbox").write_text(one_patch_mbox(kernel_build_env.tree))
    series = group_series(read_mails(root / "series.mbox"))
    worktree = Worktree(kernel_build_env.tree, root / "wt", f"farm-hosts-test-{os.getpid()}")
    commits = apply_patches(worktree, BASE_TAG, series.patches)
    try:
        return kernel_build_env.build(commits[1])
    finally:
        worktree.remove()


@pytest.fixture(scope="module")
def farm_toml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qemu-hosts")
    path = root / "farm.toml"
    hosts = "".join(
        f'[[hosts]]\nname = "{name}"\nkind = "qemu"\ntags = ["{name}"]\n'
        f"boot_timeout = 240\n[hosts.qemu]\nmemory_mb = 384\n"
        for name in NAMES
    )
    path.write_text(f'data_dir = "{root / "data"}"\n{hosts}')
    return path


@pytest.fixture(scope="module")
def config(farm_toml: Path) -> FarmConfig:
    return load_config(farm_toml)


@pytest.fixture(scope="module")
def booted(
    config: FarmConfig, patched_kernel: KernelArtifacts
) -> Iterator[dict[str, BootedKernel]]:
    hosts = [get_host(config, name) for name in NAMES]
    try:
        with ThreadPoolExecutor(len(hosts)) as pool:
            kernels = list(pool.map(lambda host: host.boot(patched_kernel), hosts))
        yield dict(zip(NAMES, kernels, strict=True))
    finally:
        for name in NAMES:
            QemuVm(config.host(name), config.data_dir).stop()


def farm(farm_toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_CONFIG": str(farm_toml)}
    return subprocess.run(
        [*FARM, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_both_hosts_run_the_patched_kernel_farm_built(
    config: FarmConfig,
    booted: dict[str, BootedKernel],
    patched_kernel: KernelArtifacts,
    kernel_build_env: KernelBuildEnv,
) -> None:
    tree = kernel_build_env.tree
    assert (
        git(tree, "rev-parse", f"{patched_kernel.commit}^").strip()
        == git(tree, "rev-parse", f"{BASE_TAG}^{{commit}}").strip()
    )
    assert git(tree, "diff", "--name-only", BASE_TAG, patched_kernel.commit).split() == [PATCHED]
    for name in NAMES:
        assert booted[name].release == patched_kernel.release
        assert patched_kernel.build_id in booted[name].version
        with get_host(config, name).transport() as ssh:
            assert ssh.run(["uname", "-r"]).stdout.strip() == patched_kernel.release
            assert patched_kernel.build_id in ssh.run(["uname", "-v"]).stdout
            assert ssh.run(["hostname"]).stdout.strip() == name
    assert booted["laptop"].boot_id != booted["workstation"].boot_id


def test_vmstat_is_read_over_ssh_and_the_scratch_disk_is_swap(
    config: FarmConfig, booted: dict[str, BootedKernel]
) -> None:
    with get_host(config, "laptop").transport() as ssh:
        vmstat = dict(line.split() for line in ssh.get("/proc/vmstat").decode().splitlines())
        swaps = ssh.run(["cat", "/proc/swaps"]).stdout
    assert int(vmstat["nr_free_pages"]) > 0
    assert {"pgfault", "pswpin", "nr_anon_pages"} <= vmstat.keys()
    assert "/dev/vda" in swaps


def test_farm_hosts_check_reports_both_hosts_healthy(
    farm_toml: Path, booted: dict[str, BootedKernel], patched_kernel: KernelArtifacts
) -> None:
    done = farm(farm_toml, "hosts", "check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = {entry["name"]: entry for entry in json.loads(done.stdout)}
    assert set(report) == set(NAMES)
    for name in NAMES:
        assert report[name]["ok"] is True, report[name]["problems"]
        assert report[name]["kernel_release"] == patched_kernel.release
        assert report[name]["boot_id"] == booted[name].boot_id
        assert report[name]["free_disk_bytes"] > 100 * 1024 * 1024
        assert report[name]["boot_method_ok"] is True


def test_farm_hosts_list_shows_the_running_vms(
    farm_toml: Path, config: FarmConfig, booted: dict[str, BootedKernel]
) -> None:
    done = farm(farm_toml, "hosts", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    for name in NAMES:
        port = QemuVm(config.host(name), config.data_dir).endpoint().port
        assert rows[name]["power_state"] == "on"
        assert rows[name]["address"] == f"root@127.0.0.1:{port}"


def test_a_vm_whose_key_does_not_match_is_refused(
    config: FarmConfig, booted: dict[str, BootedKernel], tmp_path: Path
) -> None:
    host = get_host(config, "laptop")
    assert isinstance(host, QemuHost)
    endpoint = host.endpoint()
    subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(tmp_path / "k")], check=True)
    impostor = subprocess.run(
        ["dropbearkey", "-y", "-f", str(tmp_path / "k")], capture_output=True, text=True
    ).stdout
    impostor_line = next(line for line in impostor.splitlines() if line.startswith("ssh-"))
    pattern = keys.host_pattern(endpoint.address, endpoint.port)
    genuine = next(
        line for line in endpoint.known_hosts.read_text().splitlines() if line.startswith(pattern)
    )
    keys.record_host_key(endpoint.known_hosts, pattern, impostor_line, "farm-qemu:laptop")
    try:
        with pytest.raises(HostKeyError) as refused:
            host.transport()
    finally:
        keys.record_host_key(
            endpoint.known_hosts, pattern, genuine.split(maxsplit=1)[1], "farm-qemu:laptop"
        )
    assert "does not match farm's known_hosts" in str(refused.value)
    assert "farm hosts stop laptop" in str(refused.value)
    assert host.boot_id() == booted["laptop"].boot_id  # the genuine key works again


def test_qemu_reports_its_run_state_over_qmp(
    config: FarmConfig, booted: dict[str, BootedKernel]
) -> None:
    vm = QemuVm(config.host("laptop"), config.data_dir)
    assert vm.status() == "running"
    assert vm.qmp_socket.parent.stat().st_mode & 0o077 == 0  # only farm's user can control it


def test_a_power_cycle_is_a_reset_in_the_same_qemu_seen_as_a_new_boot_id(
    config: FarmConfig, booted: dict[str, BootedKernel], patched_kernel: KernelArtifacts
) -> None:
    host = get_host(config, "laptop")
    vm = QemuVm(config.host("laptop"), config.data_dir)
    before, pid = host.boot_id(), vm.pid()
    host.power.cycle()
    again = host.wait_ready()
    assert vm.pid() == pid  # the reset button, through QMP: no new QEMU process
    assert again.boot_id != before
    assert host.boot_id() == again.boot_id
    assert again.release == patched_kernel.release  # "on" restarts the last kernel


def test_a_kernel_panic_drops_ssh_ends_the_vm_and_is_on_the_console(
    config: FarmConfig, booted: dict[str, BootedKernel]
) -> None:
    host = get_host(config, "workstation")
    offset = host.console.end()
    with host.transport() as ssh, pytest.raises(HostUnreachable):
        ssh.run("echo c > /proc/sysrq-trigger", timeout=60)
    deadline = time.monotonic() + 60
    while host.power.state() == "on" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert host.power.state() == "off"  # panic=-1 plus -no-reboot: QEMU exits
    console = host.console.read(offset)[0].decode(errors="replace")
    whole_boot = host.console.read(0)[0].decode(errors="replace")
    assert "oops=panic" in whole_boot and "Unknown kernel command line" not in whole_boot
    assert "Kernel panic - not syncing: sysrq triggered crash" in console
    assert "Call Trace:" in console and "sysrq_handle_crash" in console
    with pytest.raises(KernelError) as crashed:
        host.wait_ready(timeout=30)
    assert "workstation is powered off" in str(crashed.value)
    assert "the kernel crashed: " in str(crashed.value)
    # the crash parser's title, then the console's last lines as evidence
    assert "the kernel crashed: kernel panic: sysrq triggered crash\n--- console tail ---" in str(
        crashed.value
    )


def test_farm_hosts_stop_powers_the_vm_off(
    farm_toml: Path, config: FarmConfig, booted: dict[str, BootedKernel]
) -> None:
    vm = QemuVm(config.host("laptop"), config.data_dir)
    done = farm(farm_toml, "hosts", "stop", "laptop")
    assert done.returncode == 0, done.stderr
    assert vm.status() is None and not vm.qmp_socket.exists()
    listed = json.loads(farm(farm_toml, "hosts", "list", "--json").stdout)
    assert {row["name"]: row["power_state"] for row in listed}["laptop"] == "off"
    check = farm(farm_toml, "hosts", "check", "laptop")
    assert check.returncode == 3
    assert "laptop: NOT OK" in check.stdout and "laptop is powered off" in check.stdout
