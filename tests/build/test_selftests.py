# SPDX-License-Identifier: Apache-2.0
"""The kernel's own mm selftests, built from the tree under test (linux-source 6.1,
where they are still tools/testing/selftests/vm): static programs with the tree's own
headers, reused for the same commit, and a selftest that does not compile is the
tree's fault, named like a kernel build error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv

from farm.build.selftests import build_selftests
from farm.build.tree import BASE_TAG, commit_edit
from farm.errors import KernelError
from farm.git import git

pytestmark = [pytest.mark.slow, pytest.mark.kernel]
PROGRAMS = ["madv_populate", "map_populate", "userfaultfd"]
ELF_INTERP = 3  # PT_INTERP: a dynamically linked program names its loader


def is_static_elf(path: Path) -> bool:
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return False
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    types = [
        int.from_bytes(data[phoff + i * size : phoff + i * size + 4], "little")
        for i in range(count)
    ]
    return ELF_INTERP not in types


def test_the_mm_selftests_build_static_from_the_tree_under_test_once(
    kernel_build_env: KernelBuildEnv, tmp_path: Path
) -> None:
    built = build_selftests(
        kernel_build_env.tree, BASE_TAG, data_dir=tmp_path, target="mm", programs=PROGRAMS,
        cache_dir=kernel_build_env.cache_dir, progress=print,
    )  # fmt: skip
    for program in PROGRAMS:
        assert is_static_elf(built / program), program
    meta = json.loads((built / "metadata.json").read_text())
    assert meta["target"] == "vm"  # 6.1 predates the rename to mm
    assert "KHDR_INCLUDES=-isystem " in meta["command"] and "LDFLAGS=-static" in meta["command"]
    # The tree's own uapi headers, installed by `make headers` for this build.
    assert "/usr/include" in meta["command"]
    assert "headers" in (built / "build.log").read_text().splitlines()[0]
    stamp = (built / "metadata.json").stat().st_mtime_ns
    again = build_selftests(
        kernel_build_env.tree, BASE_TAG, data_dir=tmp_path, target="mm", programs=PROGRAMS,
        cache_dir=kernel_build_env.cache_dir,
    )  # fmt: skip
    assert again == built and (again / "metadata.json").stat().st_mtime_ns == stamp


def test_a_selftest_that_does_not_compile_is_the_trees_fault_with_its_error(
    kernel_build_env: KernelBuildEnv, tmp_path: Path
) -> None:
    tree = kernel_build_env.tree
    path = "tools/testing/selftests/vm/map_populate.c"
    lines = git(tree, "show", f"{BASE_TAG}:{path}").count("\n")
    commit = commit_edit(tree, path, f"int farm_broken = ; /* {time.time_ns()} */\n", "broken")
    with pytest.raises(KernelError) as caught:
        build_selftests(
            tree, commit, data_dir=tmp_path, target="mm", programs=PROGRAMS,
            cache_dir=kernel_build_env.cache_dir,
        )  # fmt: skip
    assert caught.value.message.startswith(
        f"selftests vm: does not compile: map_populate.c:{lines + 1}: error: expected expression"
    )
    assert caught.value.hint is not None
    assert "farm_broken" in Path(caught.value.hint.removeprefix("less ")).read_text()
