# SPDX-License-Identifier: Apache-2.0
"""What a build leaves behind, per (commit, config hash), and its metadata.

``<data_dir>/builds/<commit[:12]>-<cfghash[:8]>/`` holds bzImage, System.map, vmlinux,
.config, build.log (its first line is the command that reproduces the build), the
modules tarball when the config has modules, and metadata.json. The directory is
assembled under a temporary name and renamed, and metadata.json is written atomically,
so a reader sees either a whole build or none.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from farm.errors import FarmBug, KernelError

METADATA = "metadata.json"
Fault = Literal["kernel", "infra"]
SandboxKind = Literal["bwrap", "none"]  # how make was confined (farm.build.sandbox)


class Toolchain(BaseModel):
    """What built it, as tuxmake records it: compiler, its version, binutils and make."""

    compiler: str = ""  # "gcc"
    compiler_version: str = ""  # "12.2.0"
    compiler_banner: str = ""  # "gcc (Debian 12.2.0-14) 12.2.0"
    binutils: str = ""  # "GNU ld (GNU Binutils for Debian) 2.40"
    make: str = ""  # "GNU Make 4.3"


class BuildMetadata(BaseModel):
    """metadata.json: everything about one build, successful or not. ``command`` is the
    make command line (in its sandbox), ``config_source`` how the .config was made."""

    commit: str
    config_hash: str
    fragment: str
    arch: str
    state: Literal["building", "ok", "failed"]
    command: str
    build_id: str
    started_at: str
    host: str
    fault: Fault | None = None
    error: str | None = None
    error_lines: list[str] = []
    duration_seconds: float = 0.0
    incremental: bool = False
    ccache: dict[str, int] = {}
    release: str | None = None
    modules: bool = False
    # How make was confined; builds recorded before farm had a sandbox had none.
    sandbox: SandboxKind = "none"
    toolchain: Toolchain = Toolchain()
    config_source: str = ""

    def write(self, directory: Path) -> None:
        """Replace metadata.json atomically (write a temporary file, fsync, rename)."""
        fd, tmp = tempfile.mkstemp(prefix=".metadata.", dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, directory / METADATA)

    @classmethod
    def read(cls, directory: Path) -> BuildMetadata | None:
        try:
            return cls.model_validate_json((directory / METADATA).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, json.JSONDecodeError) as exc:
            raise FarmBug(f"{directory / METADATA} is unreadable: {exc}") from exc


@dataclass(frozen=True)
class KernelArtifacts:
    """A built kernel; satisfies farm.hosts.base.BootableKernel."""

    commit: str
    config_hash: str
    dir: Path
    release: str
    build_id: str
    duration_seconds: float
    incremental: bool
    cached: bool
    modules: bool = False

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def config(self) -> Path:
        return self.dir / ".config"

    @property
    def build_log(self) -> Path:
        return self.dir / "build.log"

    @property
    def modules_tarball(self) -> Path | None:
        return self.dir / "modules.tar.xz" if self.modules else None

    @property
    def metadata(self) -> Path:
        return self.dir / METADATA

    @classmethod
    def from_metadata(
        cls, directory: Path, meta: BuildMetadata, *, cached: bool
    ) -> KernelArtifacts:
        if meta.state != "ok" or meta.release is None:
            raise FarmBug(f"{directory} holds no finished build (state {meta.state})")
        return cls(
            commit=meta.commit,
            config_hash=meta.config_hash,
            dir=directory,
            release=meta.release,
            build_id=meta.build_id,
            duration_seconds=meta.duration_seconds,
            incremental=meta.incremental,
            cached=cached,
            modules=meta.modules,
        )


def artifacts_dir(data_dir: Path, commit: str, cfg_hash: str) -> Path:
    return data_dir / "builds" / f"{commit[:12]}-{cfg_hash[:8]}"


def build_id_for(commit: str, cfg_hash: str) -> str:
    """Baked in as KBUILD_BUILD_VERSION: `uname -v` starts with ``#farm-<c>-<h>``; it
    changes per (commit, config) yet only init/version*.o depend on it."""
    return f"farm-{commit[:12]}-{cfg_hash[:8]}"


def release_suffix(commit: str, cfg_hash: str) -> str:
    """LOCALVERSION of a build: its release is ``6.1.192-farm-<commit>-<config>``, so two
    farm kernels never share /lib/modules/<release> (setting it also drops the "+")."""
    return f"-{commit[:12]}-{cfg_hash[:8]}"


def cached_build(directory: Path) -> KernelArtifacts | None:
    """A finished build in ``directory``; a kernel failure is re-raised as it was.
    An infrastructure failure or a build interrupted before its rename is not a result:
    the caller builds again."""
    meta = BuildMetadata.read(directory)
    if meta is None or meta.state == "building" or meta.fault == "infra":
        return None
    if meta.state == "failed":
        raise KernelError(
            f"{meta.commit[:12]} does not build (recorded earlier): {meta.error}",
            hint=f"less {directory / 'build.log'}",
        )
    missing = [
        n for n in ("bzImage", "System.map", "vmlinux", ".config") if not (directory / n).is_file()
    ]
    if missing:
        raise FarmBug(f"{directory} says the build succeeded but lacks {', '.join(missing)}")
    return KernelArtifacts.from_metadata(directory, meta, cached=True)
