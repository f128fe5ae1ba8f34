"""Session fixtures for real kernels, shared by every test directory.

``linux_tree`` is Debian's linux-source 6.1 as a git repository (created once per
machine, cached under ``$FARM_CACHE_DIR``). ``soak_kernel`` is that tree built with
jobs/kconfig/soak.config, once per test session, from a cold private cache (worktree,
output directory and ccache under the session's tmp directory), so it is a real clean
build; the hosts and soak tests boot it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm.build import KernelArtifacts, build_kernel, ensure_linux_tree
from farm.build.tree import BASE_TAG
from farm.git import git


@dataclass(frozen=True)
class KernelBuildEnv:
    """Where the session's builds go: ``data_dir`` for artefacts, ``cache_dir`` for the
    worktree, output directories and ccache."""

    tree: Path
    data_dir: Path
    cache_dir: Path

    def build(self, commit: str, **kwargs: object) -> KernelArtifacts:
        return build_kernel(
            self.tree,
            commit,
            data_dir=self.data_dir,
            cache_dir=self.cache_dir,
            progress=print,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="session")
def linux_tree() -> Path:
    return ensure_linux_tree(progress=print)


@pytest.fixture(scope="session")
def kernel_build_env(
    linux_tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KernelBuildEnv]:
    root = tmp_path_factory.mktemp("kernel")
    yield KernelBuildEnv(linux_tree, root / "data", root / "cache")
    # The worktree, output directory and ccache are GBs: do not leave them behind.
    shutil.rmtree(root / "cache", ignore_errors=True)
    git(linux_tree, "worktree", "prune", check=False)


@pytest.fixture(scope="session")
def soak_kernel(kernel_build_env: KernelBuildEnv) -> KernelArtifacts:
    """The base commit of linux_tree built with the soak fragment (clean, 3-10 min)."""
    return kernel_build_env.build(BASE_TAG)
