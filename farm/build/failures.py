# SPDX-License-Identifier: Apache-2.0
"""Whose fault a failed build is: the patches' (it does not compile) or ours.

A bisection consumes "does not compile" as a finding about a patch, while a missing
compiler, a full disk or a killed make say nothing about the kernel and must be retried.
The tools are checked before make starts; after a failure the log decides.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm.build.artifacts import Fault
from farm.errors import InfraError, KernelError

# Tools a kernel build calls; each one missing is named with its Debian package.
REQUIRED_TOOLS = {
    "make": "make",
    "gcc": "gcc",
    "ld": "binutils",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "perl": "perl",
    "ccache": "ccache",
    "nice": "coreutils",
}
REQUIRED_HEADERS = {"/usr/include/gelf.h": "libelf-dev"}  # objtool, for the ORC unwinder

_COMPILE_ERROR = re.compile(
    r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: (?P<msg>.*)$"
)
_LINK_ERROR = re.compile(r"undefined reference to|multiple definition of|objtool: .*error", re.I)
_INFRA = (
    (re.compile(r"No space left on device|Disk quota exceeded"), "the disk is full"),
    (re.compile(r"Cannot allocate memory|virtual memory exhausted"), "out of memory"),
    (re.compile(r"(\S+): (?:command )?not found$"), "a tool is missing"),
    (
        re.compile(r"fatal error: (gelf|libelf|openssl/\S+|sys/capability|numa)\.h: No such file"),
        "a library header is missing",
    ),
    (re.compile(r"ld: cannot find -l\S+"), "a static library is missing"),
    (re.compile(r"Killed signal terminated program|Terminated$"), "the compiler was killed"),
    (re.compile(r"^bwrap: "), "the build sandbox failed"),
)
_MAKE_ERROR = re.compile(r"^make(\[\d+\])?: \*\*\* ")


@dataclass(frozen=True)
class Failure:
    fault: Fault
    message: str
    lines: list[str]

    def error(self, hint: str) -> KernelError | InfraError:
        cls = KernelError if self.fault == "kernel" else InfraError
        return cls(self.message, hint=hint)


def check_toolchain(env: Mapping[str, str]) -> None:
    """Raise InfraError naming every missing tool before a build starts."""
    path = env.get("PATH", "")
    missing = [
        f"{tool} ({pkg})"
        for tool, pkg in REQUIRED_TOOLS.items()
        if not shutil.which(tool, path=path)
    ]
    missing += [f"{h} ({pkg})" for h, pkg in REQUIRED_HEADERS.items() if not Path(h).is_file()]
    if missing:
        packages = " ".join(sorted({m.split("(")[1].rstrip(")") for m in missing}))
        raise InfraError(
            f"cannot build kernels here: missing {', '.join(missing)}",
            hint=f"apt-get install {packages}   # or: make setup",
        )


def classify(log: Sequence[str], returncode: int, src: Path, out: Path) -> Failure:
    """Turn make's exit status and output into a Failure with its first error lines.
    Paths are shown relative to the source tree (mm/foo.c), as the patch names them."""
    prefixes = (f"{src}/", f"{os.path.relpath(src, out)}/")
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return Failure("infra", f"make was killed by {name}", _first_errors(log, prefixes))
    for pattern, what in _INFRA:
        for line in log:
            if pattern.search(line):
                return Failure("infra", f"{what}: {line.strip()}", _first_errors(log, prefixes))
    errors = _first_errors(log, prefixes)
    for line in errors:
        if match := _COMPILE_ERROR.match(line):
            where = f"{match['file']}:{match['line']}"
            return Failure("kernel", f"does not compile: {where}: error: {match['msg']}", errors)
    for line in errors:
        if _LINK_ERROR.search(line):
            return Failure("kernel", f"does not link: {line}", errors)
    # make failed in the tree with no sign of trouble on our side: the tree's fault.
    last = errors[0] if errors else f"make exited with status {returncode}"
    return Failure("kernel", f"does not build: {last}", errors)


def _first_errors(log: Sequence[str], prefixes: Sequence[str], limit: int = 20) -> list[str]:
    """The first error lines, with the source tree prefix cut so paths read mm/foo.c."""
    picked = []
    for line in log:
        text = line.rstrip()
        for prefix in prefixes:
            text = text.replace(prefix, "")
        if _COMPILE_ERROR.match(text) or _LINK_ERROR.search(text) or _MAKE_ERROR.match(text):
            picked.append(text)
        if len(picked) >= limit:
            break
    return picked
