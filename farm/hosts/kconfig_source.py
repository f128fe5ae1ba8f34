# SPDX-License-Identifier: Apache-2.0
"""A host's own kernel configuration, as the base of its test kernels (``kind = "host"``).

The config of the kernel the machine runs (``/proc/config.gz``, else
``/boot/config-$(uname -r)``) and its loaded modules (``/proc/modules``, what ``lsmod``
prints) are read over SSH once, while the machine runs its own kernel, and kept in
``<data_dir>/hosts/<name>/host-config.json``: later builds, made while the host runs a
farm kernel, reduce the same config. ``kind = "file"`` reads the user's .config.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from farm.build.kconfig import BaseConfig
from farm.config import HostConfig
from farm.errors import InfraError, UserError
from farm.hosts.base import Transport
from farm.hosts.console import host_dir
from farm.hosts.install import MARKER
from farm.hosts.keys import write_atomic


def saved_path(config: HostConfig, data_dir: Path) -> Path:
    return host_dir(config, data_dir) / "host-config.json"


def read_host_config(transport: Transport, name: str) -> BaseConfig:
    """The running kernel's config and modules, read now."""
    release = transport.run(["uname", "-r"]).stdout.strip()
    if MARKER in release:
        raise InfraError(
            f"{name} runs farm's test kernel {release}, not its own: its config is not "
            "the machine's",
            hint=f"boot {name} into its distribution kernel once, then build again",
        )
    got = transport.run(
        f"zcat /proc/config.gz 2>/dev/null || cat /boot/config-{shlex.quote(release)}",
        check=False,
    )
    if not got.ok or "CONFIG_" not in got.stdout:
        raise InfraError(
            f"{name} has neither /proc/config.gz nor /boot/config-{release}",
            hint='use kernel_config = { kind = "file", path = ... } for this host',
        )
    lsmod = transport.run("cat /proc/modules 2>/dev/null; true").stdout  # none: no modules
    return BaseConfig(kind="host", text=got.stdout, lsmod=lsmod, origin=f"{name} ({release})")


def host_base_config(config: HostConfig, data_dir: Path, transport: Transport | None) -> BaseConfig:
    """The base config of ``config``'s test kernels; for ``host``, the saved one or,
    the first time, one read over ``transport``."""
    source = config.kernel_config
    if source.kind == "tiny":
        return BaseConfig()
    if source.kind == "file":
        assert source.path is not None  # the config model requires it
        try:
            text = source.path.expanduser().read_text()
        except OSError as exc:
            raise UserError(
                f"host {config.name}: cannot read kernel_config {source.path}: {exc.strerror}"
            ) from exc
        return BaseConfig(kind="file", text=text, origin=str(source.path))
    saved = saved_path(config, data_dir)
    if saved.exists():
        return BaseConfig(**json.loads(saved.read_text()))
    if transport is None:
        raise InfraError(f"{config.name}'s own config was never read and it is not reachable")
    base = read_host_config(transport, config.name)
    saved.parent.mkdir(parents=True, exist_ok=True)
    record = {"kind": base.kind, "text": base.text, "lsmod": base.lsmod, "origin": base.origin}
    write_atomic(saved, json.dumps(record).encode(), 0o600)
    return base
