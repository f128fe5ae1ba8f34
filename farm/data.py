# SPDX-License-Identifier: Apache-2.0
"""Where farm's own data files are: the one module that knows.

The files live in the repository's top-level folders, which are the project's public
shape: loads in jobs/loads/*.toml, Kconfig fragments in jobs/kconfig/*.config, the
programs loads run in workers/loads/*.c, the QEMU hosts' init in workers/initramfs/
and the demo series recipes in examples/series/*.toml. farm/_data/ holds symlinks to
those folders, so an editable install reads the live files, and pyproject.toml's
package-data puts real copies of them into a built wheel (``pip install .``, the
Docker image). Either way they are found through the installed package, never
through the current directory or the source tree.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

from farm.errors import InfraError


@functools.cache
def data_root() -> Path:
    """farm/_data/ of the installed package."""
    root = files("farm").joinpath("_data")
    if not isinstance(root, Path) or not root.is_dir():
        raise InfraError(
            f"farm's data files are missing: {root} is not a directory",
            hint="reinstall farm from a complete checkout: pip install .",
        )
    return root


def data_path(*parts: str) -> Path:
    """A file or folder of farm's data, with the editable install's links resolved."""
    return data_root().joinpath(*parts).resolve()


def loads_dir() -> Path:
    """jobs/loads/: the loads shipped with farm (the default of farm.toml's loads_dir)."""
    return data_path("jobs", "loads")


def kconfig_dir() -> Path:
    """jobs/kconfig/: the Kconfig fragments (soak.config)."""
    return data_path("jobs", "kconfig")


def workers_dir() -> Path:
    """workers/loads/: C sources of the helper programs loads ship to hosts."""
    return data_path("workers", "loads")


def initramfs_dir() -> Path:
    """workers/initramfs/: init and inittab of the QEMU hosts' root."""
    return data_path("workers", "initramfs")


def demo_series_dir() -> Path:
    """examples/series/: the demo series recipes (farm.demoseries)."""
    return data_path("series")
