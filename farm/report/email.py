# SPDX-License-Identifier: Apache-2.0
"""The report as an RFC 5322 reply to the culprit patch, and optional SMTP sending.

Headers go through the email package's policy, which refuses CR/LF inside a header
value, so nothing in a patch's subject or addresses can inject a header. Subjects were
often folded in the original mail: their whitespace is collapsed first.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

from farm.errors import InfraError, UserError
from farm.report.model import ReportInput
from farm.report.text import plain_body

DEFAULT_SENDER = "farm <farm@localhost>"


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def reply_subject(full_subject: str) -> str:
    subject = _one_line(full_subject)
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _unique(items: list[str], key: Callable[[str], str] = str.lower) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        if item and key(item) not in seen:
            seen[key(item)] = item
    return list(seen.values())


def _addr(value: str) -> str:
    return parseaddr(value)[1].lower() or value.lower()


def build_email(ri: ReportInput, sender: str = DEFAULT_SENDER) -> EmailMessage:
    """The reply, threaded under the culprit patch (or the cover letter without one)."""
    msg = EmailMessage(policy=default)  # LF line ends; smtplib converts when sending
    patch = ri.culprit
    try:
        msg["From"] = sender
        if patch is not None:
            msg["To"] = patch.author
            author = _addr(patch.author)
            cc = [a for a in _unique(patch.to + patch.cc, _addr) if _addr(a) != author]
            if cc:
                msg["Cc"] = ", ".join(cc)
            msg["Subject"] = reply_subject(patch.full_subject)
            parent = patch.message_id
            refs = _unique([ri.cover_message_id or "", *patch.references, parent or ""])
        else:
            msg["Subject"] = reply_subject(f"[bisect] {ri.series_title}")
            parent = ri.cover_message_id
            refs = _unique([parent or ""])
        if parent:
            msg["In-Reply-To"] = parent
        if refs:
            msg["References"] = " ".join(refs)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="farm.localhost")
    except ValueError as exc:
        raise UserError(f"refusing to write a header from stored patch data: {exc}") from exc
    msg.set_content(plain_body(ri), cte="8bit" if not plain_body(ri).isascii() else "7bit")
    return msg


def send(msg: EmailMessage, server: str, dry_run: bool = True) -> list[str]:
    """Send via SMTP at host[:port]; with dry_run only list the envelope recipients."""
    recipients = [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
    if dry_run:
        return recipients
    host, _, port = server.partition(":")
    try:
        with smtplib.SMTP(host, int(port or 25), timeout=30) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise InfraError(f"SMTP server {server} did not take the report: {exc}") from exc
    return recipients
