# SPDX-License-Identifier: Apache-2.0
"""Loads as data: jobs/loads/<name>.toml validated here.

A load says what runs on the host (a POSIX sh script, started detached by
farm.soak.load with FARM_RUN_ID, FARM_SECONDS, FARM_MEM_KB and FARM_DIR set), how long
by default, how long its warm-up is (samples before it are not used for trends), how
to quiesce the host at the end, and which counters must behave (farm.detect.counters).
Static helper programs (``binaries``) are C files under workers/loads/ that farm
compiles on the controller and copies to the host, so hosts need no compiler.
Programs of the kernel's own selftests (``selftests``) are built from the tree under
test, the same way, after the kernel (farm.build.selftests), and shipped to
``$FARM_DIR/selftests/``.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from farm.config import NAME_PATTERN, FarmConfig
from farm.data import workers_dir
from farm.errors import UserError
from farm.units import parse_duration

WORKERS_DIR = workers_dir()


class Expectation(BaseModel):
    """How one counter must behave. ``counter`` is a vmstat field or ``meminfo:Field``."""

    model_config = ConfigDict(extra="forbid")

    counter: str = Field(pattern=r"^(meminfo:)?[A-Za-z0-9_()]+$")
    rule: Literal["returns-to-zero", "no-growth"]
    tolerance: float = Field(
        default=0.0, ge=0, description="returns-to-zero: largest value still counted as zero"
    )
    min_slope_per_hour: float = Field(
        default=0.0, ge=0, description="no-growth: slope excess over baseline that is ignored"
    )


class Requirement(BaseModel):
    """One thing a load needs on the host, and who provides it: a command on the PATH
    or a path (a shell glob), from a Debian ``package`` or a ``kernel`` option. A load
    is started only when all are there; a missing one ends the run INFRA naming it."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9_./*+-]+$")
    package: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.+-]+$")
    kernel: str | None = Field(default=None, pattern=r"^CONFIG_[A-Z0-9_]+$")
    hint: str | None = Field(default=None, description="how to get it when no package has it")

    @model_validator(mode="before")
    @classmethod
    def _plain_command(cls, data: object) -> object:
        """``"stress-ng"`` is short for ``{command = "stress-ng"}``."""
        return {"command": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_thing(self) -> Requirement:
        if (self.command is None) == (self.path is None):
            raise ValueError("a requirement names exactly one of 'command' or 'path'")
        return self

    @property
    def what(self) -> str:
        return repr(self.command) if self.command else str(self.path)

    def shell_test(self) -> str:
        """A POSIX sh test that succeeds when the host has it (globs expand unquoted;
        both patterns only admit characters that are safe there)."""
        if self.command:
            return f"command -v {self.command} >/dev/null 2>&1"
        return f"ls -d {self.path} >/dev/null 2>&1"

    def missing(self, load: str) -> str:
        """The INFRA reason when the host lacks it, saying what to install."""
        reason = f"load {load} needs {self.what}, which the host lacks"
        if self.package:
            reason += f": install the Debian package {self.package}"
        elif self.kernel:
            reason += f": boot a kernel with {self.kernel}=y"
        if self.hint:
            reason += f" ({self.hint})"
        return reason


class Selftests(BaseModel):
    """Programs of tools/testing/selftests/<target> of the tree under test, built static
    on the controller with that tree's headers. ``mm`` is ``vm`` in trees before 6.3."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    programs: list[str] = Field(min_length=1)

    @field_validator("programs")
    @classmethod
    def _program_names(cls, names: list[str]) -> list[str]:
        for name in names:  # the Makefile's target names; they reach make's command line
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
                raise ValueError(f"{name!r} is not a selftest program name")
        return names


class Load(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str
    script: str = Field(min_length=1)
    duration: float = Field(gt=0, description="default soak seconds")
    warmup: float = Field(default=0.0, ge=0)
    quiesce: list[str] = []
    requires: list[Requirement] = Field(default=[], description="what the host must have")
    binaries: list[str] = Field(default=[], description="workers/loads/<name>.c to ship")
    selftests: Selftests | None = Field(default=None, description="built from the tree under test")
    expect: list[Expectation] = []

    @field_validator("duration", "warmup", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_duration(value)
        except UserError as exc:  # pydantic reports ValueErrors with the field's name
            raise ValueError(exc.message) from exc

    @field_validator("binaries")
    @classmethod
    def _binaries_exist(cls, names: list[str]) -> list[str]:
        for name in names:
            if not (WORKERS_DIR / f"{name}.c").is_file():
                raise ValueError(f"no source {WORKERS_DIR / name}.c for binary {name!r}")
        return names


def read_load(path: Path) -> Load:
    """Parse and validate one load file; every problem is a UserError naming the file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: cannot read load: {exc}") from exc
    try:
        load = Load.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'load'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"{path}: invalid load: {problems}", hint="see docs/scheduler.md") from exc
    if load.name != path.stem:
        raise UserError(f"{path}: name {load.name!r} must match the file name {path.stem!r}")
    return load


def load_names(config: FarmConfig) -> list[str]:
    return sorted(p.stem for p in config.loads_dir.glob("*.toml"))


def get_load(config: FarmConfig, name: str) -> Load:
    """The load ``name`` of the loads directory; a name, never a path, so that
    ``--load ../../x`` cannot reach a file elsewhere."""
    known = load_names(config)
    if not re.fullmatch(NAME_PATTERN, name):
        raise UserError(
            f"{name!r} is not a load name (known: {', '.join(known) or 'none'})",
            hint=f"--load {known[0] if known else 'NAME'}; loads live in {config.loads_dir}",
        )
    path = config.loads_dir / f"{name}.toml"
    if not path.is_file():
        raise UserError(
            f"no load named {name!r} in {config.loads_dir} (known: {', '.join(known) or 'none'})",
            hint=f"add {path} or pick one of the known loads",
        )
    return read_load(path)


ALWAYS_WATCHED = ("nr_free_pages", "meminfo:MemFree")


def watched_counters(config: FarmConfig, load: str, failed: list[str]) -> list[str]:
    """The counters worth watching on a run of ``load`` against its baseline: those
    that failed, those the load expects things of, then free memory. A load removed
    since the run leaves the others."""
    expected: list[str] = []
    with contextlib.suppress(UserError):
        expected = [e.counter for e in get_load(config, load).expect]
    return list(dict.fromkeys([*failed, *expected, *ALWAYS_WATCHED]))
