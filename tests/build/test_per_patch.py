# SPDX-License-Identifier: Apache-2.0
"""The per-patch build check, as 0-day does it: every patch of a range is built in
order, incrementally, and the first one that breaks the build is named with the
compiler's error, even when a later patch repairs it (the series is not bisectable)."""

from __future__ import annotations

import pytest
from kernel_fixtures import KernelBuildEnv

from farm.build import KernelArtifacts
from farm.build.builder import check_each_patch
from farm.build.tree import commit_edit
from farm.errors import KernelError
from farm.git import git

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


def test_the_first_patch_that_breaks_the_build_is_named_though_a_later_one_repairs_it(
    kernel_build_env: KernelBuildEnv, soak_kernel: KernelArtifacts
) -> None:
    tree = kernel_build_env.tree
    first = commit_edit(tree, "mm/swap.c", "\n/* 1/3: fine */\n", "mm: fine", soak_kernel.commit)
    broken = commit_edit(tree, "mm/swap.c", "\nint farm_broken = ;\n", "mm: broken", first)
    lines = len(git(tree, "show", f"{broken}:mm/swap.c").splitlines())
    # The third patch reverts the second: the range's end is the first patch's tree.
    repair = git(tree, "commit-tree", f"{first}^{{tree}}", "-p", broken, "-m", "mm: repair")
    repair = repair.strip()

    with pytest.raises(KernelError) as error:
        check_each_patch(
            tree,
            [(1, first), (2, broken), (3, repair)],
            data_dir=kernel_build_env.data_dir,
            cache_dir=kernel_build_env.cache_dir,
        )
    message = str(error.value)
    assert message.startswith(f"patch 02/03 ({broken[:12]}) breaks the build: ")
    assert f"mm/swap.c:{lines}:" in message and "error:" in message
