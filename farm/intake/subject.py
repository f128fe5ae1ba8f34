# SPDX-License-Identifier: Apache-2.0
"""Subject lines of patch mail: ``[RFC PATCH net-next v2 3/9] mm: fix the thing``.

The bracketed prefix says what a message is (patch, cover letter, reply), which
version of the series it belongs to and where it goes; the rest is the commit subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Reply and forward markers of mail clients in several languages: "Re:", German "AW:",
# Nordic "SV:"/"VS:", Dutch "Antw:", Polish "Odp:", French "TR:", Chinese "答复:"/"回复:"
# (with an ASCII or a full-width colon).
_REPLY = re.compile(
    r"^\s*(?:re|aw|sv|vs|fwd?|fw|wg|tr|antw|odp|答复|回复|回覆|答覆)\s*(?:\[\d+\])?\s*[:：]\s*",
    re.IGNORECASE,
)
_GROUPS = re.compile(r"^\s*\[([^\]]*)\]")
_HG_COUNTER = re.compile(r"\b(\d+)\s+of\s+(\d+)\b", re.IGNORECASE)  # Mercurial's "[PATCH 1 of 2]"
_LEADING_COLON = re.compile(r"^\s*:\s*")  # "[Patch]: Fix ..."
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
    pull: bool = False
    """A pull request (``[GIT PULL]``, ``[git pull]``, ``[GIT]``): not a patch to apply."""
    has_version: bool = False
    """The prefix names a version (``v2``); without one a series is v1."""
    tags: tuple[str, ...] = ()
    """Other prefix words, such as ``net-next``."""


def parse_subject(line: str) -> SubjectInfo:
    """Read the prefix of a subject; never fails (an odd subject is just not a patch)."""
    rest, is_reply = line, False
    while match := _REPLY.match(rest):
        rest, is_reply = rest[match.end() :], True
    words: list[str] = []
    while match := _GROUPS.match(rest):
        words += _HG_COUNTER.sub(r"\1/\2", match.group(1)).replace(",", " ").split()
        rest = rest[match.end() :]
        if not is_reply and (reply := _REPLY.match(rest)):  # "[list] Re: ..." from a list
            rest, is_reply = rest[reply.end() :], True
    if words:
        rest = _LEADING_COLON.sub("", rest)
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
        elif upper in ("PATCH", "RFC", "RESEND", "PULL"):
            flags.add(upper)
        else:
            tags.append(word)
    if index is not None and total is not None and index > total:
        index = total = None  # "[PATCH 9/3]" is a typo we cannot place
    pull = "PULL" in flags or [w.upper() for w in words] == ["GIT"]
    return SubjectInfo(
        subject=rest.strip(),
        is_patch=not pull and (bool(flags & {"PATCH", "RFC"}) or total is not None),
        is_reply=is_reply,
        version=max(version, 1),
        index=index,
        total=total,
        rfc="RFC" in flags,
        resend="RESEND" in flags,
        pull=pull,
        has_version=any(_VERSION.match(w) for w in words),
        tags=tuple(tags),
    )


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _HUGE
