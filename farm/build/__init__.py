# SPDX-License-Identifier: Apache-2.0
"""Kernel builds: a tree, a config fragment, and artefacts per (commit, config hash)."""

from farm.build.artifacts import KernelArtifacts
from farm.build.builder import build_kernel
from farm.build.kconfig import default_fragment
from farm.build.tree import ensure_linux_tree

__all__ = ["KernelArtifacts", "build_kernel", "default_fragment", "ensure_linux_tree"]
