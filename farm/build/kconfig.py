# SPDX-License-Identifier: Apache-2.0
"""Kernel configuration: a fragment merged onto tinyconfig, then verified.

Kconfig silently drops an option whose dependencies are not met (SWAP without BLOCK,
MEMCG without CGROUPS). A soak on a kernel that lacks what was asked for proves
nothing, so every requested option is checked in the final .config and a missing one
is an error naming the option and the dependency that removed it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from farm.data import kconfig_dir
from farm.errors import UserError

BASE_CONFIG = "tinyconfig"
ARCH = "x86_64"

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_KCONFIG_KEYWORD = re.compile(
    r"^(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|comment)\b"
)
_SYMBOL = re.compile(r"(?<![!\w])[A-Z][A-Z0-9_]+\b")  # "!FOO" is met when FOO is unset

RunMake = Callable[[list[str]], None]


def default_fragment() -> Path:
    """The soak-test fragment shipped with farm: jobs/kconfig/soak.config."""
    return kconfig_dir() / "soak.config"


def parse_config(text: str, *, source: str = "config") -> dict[str, str]:
    """``CONFIG_X=v`` lines and ``# CONFIG_X is not set`` (as ``n``); later lines win."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if match := _SET.match(line):
            values[match[1]] = match[2]
        elif match := _UNSET.match(line):
            values[match[1]] = "n"
        elif line and not line.startswith("#"):
            raise UserError(
                f"{source}:{number}: not a kernel config line: {raw!r}",
                hint="write CONFIG_NAME=y or '# CONFIG_NAME is not set'",
            )
    return values


def read_fragment(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read config fragment {path}: {exc.strerror}") from exc
    return parse_config(text, source=str(path))


@dataclass(frozen=True)
class BaseConfig:
    """What a build's .config starts from (farm.toml ``[hosts.kernel_config]``):

    - ``tiny``: tinyconfig (QEMU hosts and the demo);
    - ``host``: a machine's own running config (``text``), reduced with ``make
      localmodconfig`` against its ``lsmod`` (the /proc/modules text);
    - ``file``: a full .config the user gives (``text``), used as it is.

    The soak fragment goes on top of each, then olddefconfig; the fragment check
    applies to all three."""

    kind: Literal["tiny", "host", "file"] = "tiny"
    text: str = ""
    lsmod: str = ""
    origin: str = ""  # where it came from, for the metadata: a path or host name

    def identity(self) -> list[str]:
        if self.kind == "tiny":
            return [f"base={BASE_CONFIG}"]
        digest = hashlib.sha256(self.text.encode()).hexdigest()
        lines = [f"base={self.kind}", f"config={digest}"]
        if self.kind == "host":  # modules in use, not their sizes or use counts
            modules = "\n".join(sorted(line.split()[0] for line in self.lsmod.splitlines() if line))
            lines.append(f"lsmod={hashlib.sha256(modules.encode()).hexdigest()}")
        return lines

    def describe(self, fragment: str) -> str:
        if self.kind == "tiny":
            return f"{BASE_CONFIG} + {fragment}"
        if self.kind == "host":
            count = sum(1 for line in self.lsmod.splitlines() if line.strip())
            return f"{self.origin}'s config, localmodconfig ({count} modules) + {fragment}"
        return f"{self.origin} + {fragment}"


def config_hash(fragment: Mapping[str, str], base: BaseConfig | None = None) -> str:
    """Identity of a configuration request: base, arch and the fragment's options
    (order and comments do not matter), and how the release is named (builds named
    "-farm+" all alike, from before per-build release names, never match). Hosts
    whose reduced configs are the same share builds."""
    lines = [*(base or BaseConfig()).identity(), f"arch={ARCH}", "release=per-build"]
    lines += [f"{name}={value}" for name, value in sorted(fragment.items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def configure(out: Path, src: Path, fragment: Mapping[str, str], run_make: RunMake) -> None:
    """Write ``out/.config``: tinyconfig, the fragment on top, olddefconfig, verified.

    An unchanged result keeps the previous file and its mtime, so make does not
    re-sync the configuration and recompile for nothing."""
    config = out / ".config"
    previous = config.read_bytes() if config.exists() else None
    stat = config.stat() if config.exists() else None
    run_make([BASE_CONFIG])
    merged = _merge(config.read_text(), fragment)
    config.write_text(merged)
    run_make(["olddefconfig"])
    verify(parse_config(config.read_text()), fragment, src)
    if previous is not None and stat is not None and config.read_bytes() == previous:
        os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# A distribution's config builds here only without its signing certificates (files of
# its own packaging tree) and BTF (pahole); debug info only slows the build down.
DISTRO_ADJUSTMENTS = {
    "CONFIG_SYSTEM_TRUSTED_KEYS": '""',
    "CONFIG_SYSTEM_REVOCATION_KEYS": '""',
    "CONFIG_MODULE_SIG_KEY": '"certs/signing_key.pem"',
    "CONFIG_DEBUG_INFO_BTF": "n",
    "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT": "n",
    "CONFIG_DEBUG_INFO_DWARF4": "n",
    "CONFIG_DEBUG_INFO_DWARF5": "n",
    "CONFIG_DEBUG_INFO_NONE": "y",
}
# What the soak fragment sets only to make tiny VM kernels: not applied to a host's own.
TINY_ONLY = ("CONFIG_MODULES",)


def configure_base(
    out: Path, src: Path, base: BaseConfig, fragment: Mapping[str, str], run_make: RunMake
) -> dict[str, str]:
    """``configure`` for any base; returns the fragment options that were checked."""
    if base.kind == "tiny":
        configure(out, src, fragment, run_make)
        return dict(fragment)
    return configure_host(out, src, base.text, base.lsmod if base.kind == "host" else None,
                          fragment, run_make)  # fmt: skip


def configure_host(
    out: Path,
    src: Path,
    host_config: str,
    lsmod: str | None,
    fragment: Mapping[str, str],
    run_make: RunMake,
) -> dict[str, str]:
    """Write ``out/.config`` the way a kernel developer reduces a machine's own config:
    its running config, ``make localmodconfig`` against its ``lsmod`` (only the modules
    it uses; skipped without one: a ``file`` config), the soak fragment on top,
    ``olddefconfig``, verified. Returns the options that were checked."""
    (out / ".config").write_text(_merge(host_config, DISTRO_ADJUSTMENTS))
    if lsmod is not None:
        (out / "lsmod").write_text(lsmod)
        run_make([f"LSMOD={out / 'lsmod'}", "localmodconfig"])
    else:
        run_make(["olddefconfig"])
    wanted = {k: v for k, v in fragment.items() if k not in TINY_ONLY}
    (out / ".config").write_text(_merge((out / ".config").read_text(), wanted))
    run_make(["olddefconfig"])
    verify(parse_config((out / ".config").read_text()), wanted, src)
    return wanted


def _merge(base: str, fragment: Mapping[str, str]) -> str:
    """What merge_config.sh does: drop the base's lines for the fragment's options and
    append the fragment (the last value of a choice wins in Kconfig)."""
    kept = []
    for line in base.splitlines():
        match = _SET.match(line) or _UNSET.match(line)
        if not (match and match[1] in fragment):
            kept.append(line)
    for name, value in fragment.items():
        kept.append(f"# {name} is not set" if value == "n" else f"{name}={value}")
    return "\n".join(kept) + "\n"


def verify(final: Mapping[str, str], requested: Mapping[str, str], src: Path) -> None:
    """Every requested option has its value in ``final``, or a UserError lists each one
    that does not and why."""
    problems = []
    for name, want in requested.items():
        got = final.get(name, "n")
        if got != want:
            problems.append(f"  {name}: asked {want}, got {got}: {_why(name, want, final, src)}")
    if problems:
        raise UserError(
            "the kernel configuration lacks options the fragment asks for:\n" + "\n".join(problems),
            hint="add the missing dependencies to the fragment (or drop the option)",
        )


def _why(name: str, want: str, final: Mapping[str, str], src: Path) -> str:
    symbol = name.removeprefix("CONFIG_")
    files = _kconfig_files(src)
    definitions = list(_definitions(files, symbol))
    if not definitions:
        return "no such option in this tree"
    depends = [
        dep for path, index, body in definitions for dep in _dependencies(files, path, index, body)
    ]
    unmet = sorted(
        {s for dep in depends for s in _SYMBOL.findall(dep) if final.get(f"CONFIG_{s}", "n") == "n"}
    )
    shown = " && ".join(f"({d})" for d in dict.fromkeys(depends))
    if unmet:
        return f"depends on {shown}; not set: {', '.join(unmet)}"
    if want == "n":
        return "another option selects it"
    met = f"its dependencies {shown} are met; " if depends else ""
    return met + "something else decides it (a choice, a select or a range)"


Files = dict[Path, list[str]]


def _kconfig_files(src: Path) -> Files:
    """Every Kconfig file of the tree, relative path -> lines (read once per question)."""
    return {
        path.relative_to(src): path.read_text(errors="replace").splitlines()
        for path in src.rglob("Kconfig*")
        if path.is_file() and "Documentation" not in path.parts
    }


def _definitions(files: Files, symbol: str) -> Iterator[tuple[Path, int, list[str]]]:
    """Where ``config SYMBOL`` is defined: file, line index and the entry's body."""
    header = re.compile(rf"^\s*(menu)?config\s+{re.escape(symbol)}\s*$")
    for path, lines in files.items():
        for index, line in enumerate(lines):
            if header.match(line):
                body = []
                for following in lines[index + 1 :]:
                    if _KCONFIG_KEYWORD.match(following):
                        break
                    body.append(following.strip())
                yield path, index, body


def _dependencies(files: Files, path: Path, index: int, body: list[str]) -> list[str]:
    """The entry's ``depends on``, the ``if`` blocks around it, and those around the
    ``source`` lines that include its file (PSTORE sits in ``if MISC_FILESYSTEMS``)."""
    own = [
        line.removeprefix("depends on ").strip() for line in body if line.startswith("depends on ")
    ]
    return own + _enclosing_ifs(files[path], index) + _sourced_under(files, path, depth=4)


def _enclosing_ifs(lines: list[str], index: int) -> list[str]:
    stack: list[str] = []
    for line in lines[:index]:
        text = line.split("#", 1)[0].strip()
        if text.startswith("if "):
            stack.append(text.removeprefix("if ").strip())
        elif text == "endif" and stack:
            stack.pop()
    return stack


def _sourced_under(files: Files, path: Path, depth: int) -> list[str]:
    included = re.compile(rf'^\s*(o|r|or)?source\s+"{re.escape(str(path))}"')
    for parent, lines in files.items():
        for index, line in enumerate(lines):
            if included.match(line):
                above = _sourced_under(files, parent, depth - 1) if depth > 1 else []
                return _enclosing_ifs(lines, index) + above
    return []
