# SPDX-License-Identifier: Apache-2.0
"""Hunk integrity: does each ``@@ -a,b +c,d @@`` hold b old and d new lines?

Mail clients and archives cut and re-wrap patches; git am then stops with little to
say (``corrupt patch at line 18``). Counting the lines of every hunk finds the damage
without git, so ``farm submit --dry-run`` refuses what the real apply would.
"""

from __future__ import annotations

import re

from farm.errors import UserError
from farm.intake.series import PatchMail

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_PATH = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)")


def damage(diff: str) -> str | None:
    """The first damaged hunk of ``diff`` in words, or None when every hunk is whole."""
    lines = diff.split("\n")
    if lines[-1] == "":
        lines.pop()  # the end of the last line, not an empty context line
    path, i = "?", 0
    while i < len(lines):
        line, i = lines[i], i + 1
        if (named := _PATH.match(line)) and named.group(1) != "/dev/null":
            path = named.group(1)
        if hunk := _HUNK.match(line):
            old, new = int(hunk.group(1) or 1), int(hunk.group(2) or 1)
            old_left, new_left, i = _consume(lines, i, old, new)
            if old_left or new_left:
                return (
                    f"{path} hunk {hunk.group(0)} has {old - old_left} old and "
                    f"{new - new_left} new lines, its header says {old} and {new}"
                )
    return None


def _consume(lines: list[str], i: int, old: int, new: int) -> tuple[int, int, int]:
    """Read hunk lines from ``i`` while any are due: (old, new) still due, next index."""
    while (old > 0 or new > 0) and i < len(lines):
        if _signature(lines, i):
            break
        mark = lines[i][:1]
        if mark in (" ", ""):  # an empty line is context whose blank was lost; git takes it
            old, new = old - 1, new - 1
        elif mark == "-":
            old -= 1
        elif mark == "+":
            new -= 1
        elif mark != "\\":  # "\ No newline at end of file" counts for neither side
            break
        i += 1
    return old, new, i


def _signature(lines: list[str], i: int) -> bool:
    """format-patch's "-- " line before the git version, not a removed "- " line."""
    after = lines[i + 1][:1] if i + 1 < len(lines) else None
    return lines[i] == "-- " and after not in (" ", "", "-", "+", "\\")


def check_hunks(patches: list[PatchMail]) -> None:
    """A UserError naming the patches whose hunks do not match their headers."""
    damaged = [(patch, found) for patch in patches if (found := damage(patch.diff))]
    if not damaged:
        return
    problems = "; ".join(
        f"patch {patch.index}/{patch.info.total or 1} {patch.subject!r} is damaged: {found}"
        for patch, found in damaged
    )
    raise UserError(
        problems,
        hint="the mail was cut or re-wrapped on its way: fetch it again "
        "(b4 am <message-id>) or ask for a resend",
    )
