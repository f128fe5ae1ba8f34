# SPDX-License-Identifier: Apache-2.0
"""Real kernel builds of linux-source 6.1 with the soak fragment.

The shared ``soak_kernel`` is the clean build (a cache hit after the first session on a
machine). The other builds reuse its output directory: a cache hit, one more commit
touching one mm/ file, a commit that does not compile. Their commits are made with git
plumbing on top of the base (farm.build.tree.commit_edit), unique to the session so
each session really builds them, into a private data directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv

from farm.build import KernelArtifacts
from farm.build.kconfig import default_fragment, parse_config, read_fragment
from farm.build.tree import BASE_TAG, commit_edit
from farm.errors import InfraError, KernelError
from farm.git import git

pytestmark = [pytest.mark.slow, pytest.mark.kernel]
SESSION = time.time_ns()


@pytest.fixture(scope="module")
def private_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("builds")


def compiled_objects(log: Path) -> list[str]:
    return re.findall(r"^\s+CC\s+(\S+\.o)$", log.read_text(), re.M)


def test_a_clean_build_has_every_artefact_and_the_requested_options(
    soak_kernel: KernelArtifacts,
) -> None:
    # The first build in its output directory, whichever session made it.
    assert json.loads(soak_kernel.metadata.read_text())["incremental"] is False
    for path in (
        soak_kernel.bzimage,
        soak_kernel.system_map,
        soak_kernel.vmlinux,
        soak_kernel.config,
    ):
        assert path.stat().st_size > 0, path
    # "-farm": soak.config marks every test kernel; then the commit and config: one
    # release (and one /lib/modules directory) per build
    assert soak_kernel.release == (
        f"6.1.192-farm-{soak_kernel.commit[:12]}-{soak_kernel.config_hash[:8]}"
    )
    assert soak_kernel.build_id == f"farm-{soak_kernel.commit[:12]}-{soak_kernel.config_hash[:8]}"
    config = parse_config(soak_kernel.config.read_text())
    for name, value in read_fragment(default_fragment()).items():
        assert config.get(name, "n") == value, name
    assert re.search(r" [tT] deferred_split_scan$", soak_kernel.system_map.read_text(), re.M)


def test_the_build_log_starts_with_the_command_that_reproduces_it(
    soak_kernel: KernelArtifacts,
) -> None:
    # bwrap ... -- nice -n 10 make ...; builds from before the sandbox start with make's
    # environment instead: the shared soak_kernel may be one of them.
    first = soak_kernel.build_log.read_text().splitlines()[0]
    assert " nice -n 10 make -C " in first
    assert f"KBUILD_BUILD_VERSION={soak_kernel.build_id}" in first
    meta = json.loads(soak_kernel.metadata.read_text())
    assert meta["state"] == "ok" and meta["command"] == first
    assert meta["release"] == soak_kernel.release
    assert meta["ccache"]["hits"] + meta["ccache"]["misses"] > 500  # every compile went via ccache


def test_the_metadata_says_what_built_the_kernel_and_from_which_config(
    soak_kernel: KernelArtifacts,
) -> None:
    meta = json.loads(soak_kernel.metadata.read_text())
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout
    assert meta["toolchain"]["compiler"] == "gcc"
    assert meta["toolchain"]["compiler_version"] == gcc.strip()
    assert meta["toolchain"]["compiler_banner"].startswith("gcc ")
    assert meta["toolchain"]["binutils"].startswith("GNU ld ")
    assert meta["toolchain"]["make"].startswith("GNU Make ")
    assert meta["config_source"] == "tinyconfig + soak.config"
    assert meta["config_hash"] == soak_kernel.config_hash


def test_the_same_commit_and_config_again_is_a_cache_hit_that_builds_nothing(
    kernel_build_env: KernelBuildEnv, soak_kernel: KernelArtifacts
) -> None:
    log_before = soak_kernel.build_log.stat().st_mtime_ns
    listing = sorted(soak_kernel.dir.parent.iterdir())
    again = kernel_build_env.build(BASE_TAG)
    assert again.cached and again.dir == soak_kernel.dir
    assert again.build_log.stat().st_mtime_ns == log_before
    assert sorted(again.dir.parent.iterdir()) == listing


def test_one_more_commit_touching_mm_recompiles_only_a_few_objects(
    kernel_build_env: KernelBuildEnv, soak_kernel: KernelArtifacts, private_data: Path
) -> None:
    edit = f"\nint farm_test_marker = {SESSION % 1000};\n/* session {SESSION} */\n"
    commit = commit_edit(kernel_build_env.tree, "mm/swap.c", edit, "mm: a marker")
    kernel_build_env.build(BASE_TAG, data_dir=private_data)  # the output dir is at the base
    patched = kernel_build_env.build(commit, data_dir=private_data)
    assert patched.incremental and not patched.cached
    assert json.loads(patched.metadata.read_text())["sandbox"] == "bwrap"
    assert patched.commit == commit and patched.build_id != soak_kernel.build_id
    objects = compiled_objects(patched.build_log)
    # mm/swap.o, and the few objects that embed the release, which is per build now
    # (utsrelease.h: init/version*, kernel/sys, net/ethtool/ioctl...)
    assert [o for o in objects if o.startswith("mm/")] == ["mm/swap.o"]
    assert len(objects) <= 10, objects
    assert " D farm_test_marker" in patched.system_map.read_text()


def test_a_commit_that_does_not_compile_is_the_kernels_fault_naming_file_and_line(
    kernel_build_env: KernelBuildEnv, soak_kernel: KernelArtifacts, private_data: Path
) -> None:
    tree = kernel_build_env.tree
    lines = git(tree, "show", f"{BASE_TAG}:mm/vmstat.c").count("\n")
    edit = f"int farm_broken = ; /* session {SESSION} */\n"
    commit = commit_edit(tree, "mm/vmstat.c", edit, "mm: broken")
    with pytest.raises(KernelError, match=rf"does not compile: mm/vmstat.c:{lines + 1}:"):
        kernel_build_env.build(commit, data_dir=private_data)
    # Asking again answers from the record instead of compiling again.
    with pytest.raises(KernelError, match="recorded earlier"):
        kernel_build_env.build(commit, data_dir=private_data)


def test_a_missing_tool_is_our_fault_not_the_kernels(
    kernel_build_env: KernelBuildEnv,
    private_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for tool in Path(directory).glob("*") if Path(directory).is_dir() else []:
            if tool.name != "bison" and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    commit = commit_edit(kernel_build_env.tree, "mm/swap.c", "\n/* unbuilt */\n", "mm: unbuilt")
    with pytest.raises(InfraError, match=r"missing bison \(bison\)") as caught:
        kernel_build_env.build(commit, data_dir=private_data)
    assert "apt-get install bison" in str(caught.value)
