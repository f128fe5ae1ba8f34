# SPDX-License-Identifier: Apache-2.0
"""Session fixtures for real kernels, shared by every test directory.

``linux_tree`` is Debian's linux-source 6.1 as a git repository, created once per
machine and cached under ``$FARM_CACHE_DIR`` (default ~/.cache/farm).

``soak_kernel`` is that tree's base commit built with jobs/kconfig/soak.config. Its
worktree, output directory, ccache and artefacts live in the persistent cache, so the
first session on a machine (CI's fresh one) makes a real clean build and every later
session, of any test directory, gets a cache hit; the build lock makes concurrent
sessions wait for the first one instead of building in parallel. The artefacts are
linked into ``kernel_build_env.data_dir``, private to the session.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm.build import KernelArtifacts, build_kernel, ensure_linux_tree
from farm.build.artifacts import cached_build
from farm.build.tree import BASE_TAG, farm_cache_dir


@dataclass(frozen=True)
class KernelBuildEnv:
    """Where builds go: ``data_dir`` for artefacts, ``cache_dir`` for the worktree,
    output directories and ccache."""

    tree: Path
    data_dir: Path
    cache_dir: Path

    def build(self, commit: str, *, data_dir: Path | None = None) -> KernelArtifacts:
        return build_kernel(
            self.tree,
            commit,
            data_dir=data_dir or self.data_dir,
            cache_dir=self.cache_dir,
            progress=print,
        )


@pytest.fixture(scope="session")
def linux_tree() -> Path:
    return ensure_linux_tree(progress=print)


@pytest.fixture(scope="session")
def kernel_build_env(linux_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> KernelBuildEnv:
    """The session's own artefacts directory; the shared persistent cache."""
    return KernelBuildEnv(linux_tree, tmp_path_factory.mktemp("kernel-data"), farm_cache_dir())


@pytest.fixture(scope="session")
def soak_kernel(kernel_build_env: KernelBuildEnv) -> KernelArtifacts:
    """The base commit built with the soak fragment (first time: a clean build, minutes),
    linked into the session's data directory, where a build step finds it cached."""
    shared = kernel_build_env.build(BASE_TAG, data_dir=farm_cache_dir() / "test-builds")
    mine = kernel_build_env.data_dir / "builds" / shared.dir.name
    shutil.copytree(shared.dir, mine, copy_function=_link_or_copy)
    kernel = cached_build(mine)
    assert kernel is not None
    return kernel


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
