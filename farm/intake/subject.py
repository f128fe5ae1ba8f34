# SPDX-License-Identifier: Apache-2.0
"""Subject lines of patch mail: ``[RFC PATCH net-next v2 3/9] mm: fix the thing``.

The bracketed prefix says what a message is (patch, cover letter, reply), which
version of the series it belongs to and where it goes; the rest is the commit subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REPLY = re.compile(r"^\s*(?:re|aw|sv|fwd?|antw)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE)
_GROUPS = re.compile(r"^\s*\[([^\]]*)\]")
_COUNTER = re.compile(r"^0*(\d+)/0*(\d+)$")
_VERSION = re.compile(r"^(?:patch)?v(\d+)$", re.IGNORECASE)
# A counter this long numbers no real series; int() of thousands of digits even fails.
_HUGE = 10**18


@dataclass(frozen=True)
class SubjectInfo:
    """What a subject line says about its message."""

    subject: str
    """The subject without reply markers and bracketed prefixes."""
    is_patch: bool
    is_reply: bool
    version: int = 1
    index: int | None = None
    total: int | None = None
    rfc: bool = False
    resend: bool = False
    tags: tuple[str, ...] = ()
    """Other prefix words, such as ``net-next``."""


def parse_subject(line: str) -> SubjectInfo:
    """Read the prefix of a subject; never fails (an odd subject is just not a patch)."""
    rest, is_reply = line, False
    while match := _REPLY.match(rest):
        rest, is_reply = rest[match.end() :], True
    words: list[str] = []
    while match := _GROUPS.match(rest):
        words += match.group(1).replace(",", " ").split()
        rest = rest[match.end() :]
        if not is_reply and (reply := _REPLY.match(rest)):  # "[list] Re: ..." from a list
            rest, is_reply = rest[reply.end() :], True
    version, index, total = 1, None, None
    flags: set[str] = set()
    tags: list[str] = []
    for word in words:
        upper = word.upper()
        if counter := _COUNTER.match(word):
            index, total = _number(counter.group(1)), _number(counter.group(2))
        elif version_match := _VERSION.match(word):
            version = _number(version_match.group(1))
            if upper.startswith("PATCH"):  # "[PATCHv2 1/3]"
                flags.add("PATCH")
        elif upper in ("PATCH", "RFC", "RESEND"):
            flags.add(upper)
        else:
            tags.append(word)
    if index is not None and total is not None and index > total:
        index = total = None  # "[PATCH 9/3]" is a typo we cannot place
    return SubjectInfo(
        subject=rest.strip(),
        is_patch=bool(flags & {"PATCH", "RFC"}) or total is not None,
        is_reply=is_reply,
        version=max(version, 1),
        index=index,
        total=total,
        rfc="RFC" in flags,
        resend="RESEND" in flags,
        tags=tuple(tags),
    )


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _HUGE
