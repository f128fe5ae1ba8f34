# SPDX-License-Identifier: Apache-2.0
"""Trailers given in replies (``Reviewed-by:``, ``Tested-by:``, ``Acked-by:``...), the
way ``b4 am`` collects them.

A trailer counts when it is on an unquoted line of a reply to a patch (or to a reply
to it, however deep), or of a reply to the cover letter, which gives it to every
patch. As b4 does, a trailer naming someone other than the sender (neither the
address nor the name matches the From: header) is not taken: a reply quoting another
reviewer, or forging one, adds nothing. Trailers already in the patch are not repeated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr

from farm.intake.mbox import Mail
from farm.intake.thread import Thread

# Person trailers only ("Fixes:" or "Link:" in a reply are discussion, not a grant).
_TRAILER = re.compile(r"^([A-Z][A-Za-z]*(?:-[A-Za-z]+)*-by):[ \t]*(\S[^\n]*?)[ \t]*$")
_SIGNATURE = re.compile(r"^--[ \t]*$")
_NOT_GIVEN = {"signed-off-by"}  # only the author and committers sign off
_MAILTO = re.compile(r"<mailto:[^<>]*>")  # what an HTML mail client adds to an address
_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>|([^<>\s]+@[^<>\s]+)")


@dataclass(frozen=True)
class Trailer:
    """One trailer and the reply that gave it."""

    name: str
    value: str
    message_id: str | None

    @property
    def line(self) -> str:
        return f"{self.name}: {self.value}"

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "value": self.value, "message_id": self.message_id}


@dataclass
class Collected:
    """Trailers per patch number, and what was left out and why."""

    by_patch: dict[int, list[Trailer]]
    ignored: list[str]


def collect_trailers(
    patches: dict[str, int], cover: str | None, replies: Sequence[Mail], thread: Thread
) -> Collected:
    """``patches`` maps each patch's Message-ID to its number; ``cover`` is the cover's."""
    targets: dict[str, list[int]] = {msgid: [n] for msgid, n in patches.items()}
    if cover:
        targets[cover] = sorted(set(patches.values()))
    collected = Collected({n: [] for n in patches.values()}, [])
    for reply in replies:
        target = thread.first_of(reply, targets)
        if target is None:
            continue
        for trailer in _given(reply, collected.ignored):
            for number in targets[target]:
                if trailer.line not in {t.line for t in collected.by_patch[number]}:
                    collected.by_patch[number].append(trailer)
    return collected


def without_present(collected: Collected, bodies: dict[int, str]) -> None:
    """Drop trailers a patch already carries (the author added them when resending)."""
    for number, trailers in collected.by_patch.items():
        present = {line.strip().lower() for line in bodies.get(number, "").splitlines()}
        trailers[:] = [t for t in trailers if t.line.lower() not in present]


def _given(reply: Mail, ignored: list[str]) -> list[Trailer]:
    sender_name, sender_addr = parseaddr(reply.author)
    found = []
    for line in reply.body.splitlines():
        if _SIGNATURE.match(line):
            break
        match = _TRAILER.match(line)
        if not match or match.group(1).lower() in _NOT_GIVEN:
            continue
        value = _MAILTO.sub("", match.group(2))
        address = _ADDRESS.search(value)
        addr = (address.group(1) or address.group(2)) if address else ""
        name = value[: address.start()].strip().strip('"') if address else value
        if addr.lower() != sender_addr.lower() and name != sender_name:
            ignored.append(f"{match.group(1)}: {value} (sent by {reply.author})")
            continue
        found.append(Trailer(match.group(1), value, reply.message_id))
    return found
