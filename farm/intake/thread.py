# SPDX-License-Identifier: Apache-2.0
"""Who replies to whom: the Message-ID graph of the mail read in one go.

A series is told apart from its discussion, and two sendings of one version from each
other, by this graph (``In-Reply-To``, then ``References``) and by the date.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from farm.intake.mbox import Mail

# A thread is never deeper than this; a loop of In-Reply-To (hostile or broken mail)
# must end the walk.
_MAX_DEPTH = 1000


@dataclass(frozen=True)
class Thread:
    """The messages by Message-ID (the first one wins when an id repeats)."""

    by_id: dict[str, Mail]

    @classmethod
    def of(cls, mails: Iterable[Mail]) -> Thread:
        by_id: dict[str, Mail] = {}
        for mail in mails:
            if mail.message_id:
                by_id.setdefault(mail.message_id, mail)
        return cls(by_id)

    def ancestors(self, mail: Mail) -> Iterator[str]:
        """Message-IDs above ``mail``, nearest first: the In-Reply-To chain through the
        messages at hand, then the References the chain did not pass through."""
        seen = {mail.message_id}
        current: Mail | None = mail
        for _ in range(_MAX_DEPTH):
            parent = current.in_reply_to if current else None
            if parent is None or parent in seen:
                break
            seen.add(parent)
            yield parent
            current = self.by_id.get(parent)
        for ref in reversed(mail.references):
            if ref not in seen:
                seen.add(ref)
                yield ref

    def first_of(self, mail: Mail, wanted: Container[str]) -> str | None:
        """The nearest ancestor of ``mail`` that is in ``wanted``."""
        return next((msgid for msgid in self.ancestors(mail) if msgid in wanted), None)

    def parent_here(self, mail: Mail) -> Mail | None:
        """The nearest ancestor that is among the messages at hand."""
        found = self.first_of(mail, self.by_id)
        return self.by_id[found] if found else None


def mail_time(mail: Mail) -> float:
    """The Date header as a POSIX time; 0 when absent or unreadable (sorts first)."""
    if not mail.date:
        return 0.0
    try:
        return parsedate_to_datetime(mail.date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0
