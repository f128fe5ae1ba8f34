# SPDX-License-Identifier: Apache-2.0
"""The reports as RFC 5322 replies: a FAIL report to the culprit patch (or the cover
letter), a PASS report (``Tested-by:``) to the cover letter; sent by farm.report.mailer.

Headers go through the email package's policy, which refuses CR/LF inside a header
value, so nothing in a patch's subject or addresses can inject a header. Subjects were
often folded in the original mail: their whitespace is collapsed first.

Recipients: the patch's author, and the people the patch went to; a mailing list only
when [report] cc_lists allows it (a test farm's report is not public by default).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, make_msgid, parseaddr

from farm.config import FarmConfig
from farm.errors import UserError
from farm.report import mailer, repro
from farm.report.model import Identity, Kernel, PassInput, PatchRef, ReportInput
from farm.report.text import pass_body, plain_body

MAX_LINE = 998  # RFC 5322 2.1.1: a line longer than this needs a transfer encoding


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


def is_list(address: str, identity: Identity) -> bool:
    """An address at a mailing-list domain ([report] list_domains, '*' one label)."""
    domain = _addr(address).rpartition("@")[2]
    return any(fnmatch.fnmatchcase(domain, pattern.lower()) for pattern in identity.list_domains)


def _may_cc(address: str, identity: Identity) -> bool:
    if not is_list(address, identity):
        return True
    allowed = {a.lower() for a in identity.cc_lists}
    return "*" in allowed or _addr(address) in allowed


def _domain(sender: str) -> str:
    """The sender's domain names our Message-IDs (a bare host name is not unique)."""
    domain = _addr(sender).rpartition("@")[2]
    return domain if "." in domain else "farm.localhost"


def _headers(
    msg: EmailMessage,
    identity: Identity,
    subject: str,
    patch: PatchRef | None,
    parent_refs: list[str],
) -> None:
    """From/To/Cc/Subject and the threading headers: In-Reply-To the last of
    ``parent_refs``, References all of them."""
    try:
        msg["From"] = identity.sender
        if patch is not None:
            msg["To"] = patch.author
            author = _addr(patch.author)
            cc = [
                a
                for a in _unique(patch.to + patch.cc, _addr)
                if _addr(a) != author and _may_cc(a, identity)
            ]
            if cc:
                msg["Cc"] = ", ".join(cc)
        msg["Subject"] = reply_subject(subject)
        refs = _unique([r.strip() for r in parent_refs])
        if refs:
            msg["In-Reply-To"] = refs[-1]
            msg["References"] = " ".join(refs)
        msg["Date"] = formatdate(localtime=False)
    except ValueError as exc:
        raise UserError(f"refusing to write a header from stored patch data: {exc}") from exc


def tags(kind: str, identity: Identity, msg: EmailMessage, **ids: int) -> list[str]:
    """The trailers a fix (or the series) carries, in the documented form
    (Documentation/process/submitting-patches.rst): who found it, and for a bug report
    ``Closes:`` its address in the archive, only when it goes to a list (else nothing
    archives it and the link would be dead)."""
    message_id = str(msg["Message-ID"]).strip().strip("<>")
    out = [f"{kind}: {identity.name_in_tags}"]
    archived = any(is_list(addr, identity) for addr in mailer.recipients(msg))
    if kind == "Reported-by" and identity.archive_url and archived:
        out.append(f"Closes: {identity.archive_url.format(message_id=message_id, **ids)}")
    if identity.link_url:
        out.append(f"Link: {identity.link_url.format(message_id=message_id, **ids)}")
    return out


def _cte(text: str) -> str:
    """Plain 7bit or 8bit as kernel people read it (and save: a config stays a config);
    quoted-printable only for a line no SMTP server carries (past 998 characters)."""
    if any(len(line) > MAX_LINE for line in text.splitlines()):
        return "quoted-printable"
    return "7bit" if text.isascii() else "8bit"


def _set_body(msg: EmailMessage, text: str) -> None:
    msg.set_content(text, cte=_cte(text))


def _attach_config(msg: EmailMessage, kernel: Kernel) -> None:
    if kernel.config is not None:
        text = kernel.config
        msg.add_attachment(text, subtype="plain", filename="config", cte=_cte(text))


def _attachments(ri: ReportInput) -> list[str]:
    names = ["config"] if ri.kernel.config is not None else []
    return [*names, repro.NAME] if ri.reproducer is not None else names


def build_email(ri: ReportInput, identity: Identity | None = None) -> EmailMessage:
    """The FAIL report, threaded under the culprit patch (or the cover letter without
    one), with the kernel config and repro.sh attached."""
    identity = identity or Identity()
    msg = EmailMessage(policy=default)  # LF line ends; smtplib converts when sending
    patch = ri.culprit
    if patch is not None:
        refs = [ri.cover_message_id or "", *patch.references, patch.message_id or ""]
        _headers(msg, identity, patch.full_subject, patch, refs)
    else:
        _headers(msg, identity, f"[bisect] {ri.series_title}", None, [ri.cover_message_id or ""])
    msg["Message-ID"] = make_msgid(domain=_domain(identity.sender))
    trailers = tags("Reported-by", identity, msg, bisection=ri.bisection_id)
    _set_body(msg, plain_body(ri, trailers, _attachments(ri)))
    _attach_config(msg, ri.kernel)
    if ri.reproducer is not None:
        msg.add_attachment(
            repro.script(ri.reproducer), maintype="application", subtype="x-sh",
            filename=repro.NAME,
        )  # fmt: skip
    return msg


def cover_subject(patch: PatchRef, title: str) -> str:
    """The cover letter's subject, from a patch's prefix: [PATCH v2 03/10] -> 00/10."""
    prefix = re.match(r"\s*(\[[^\]]*?)\b0*\d+/(\d+)\]", patch.full_subject)
    if prefix is None:
        return title
    return f"{prefix.group(1)}{'0' * len(prefix.group(2))}/{prefix.group(2)}] {title}"


def build_pass_email(pi: PassInput, identity: Identity | None = None) -> EmailMessage:
    """The PASS report: ``Tested-by:`` with the hours and hosts, to the cover letter
    (b4 then applies it to the whole series) or, without one, to the last patch tested."""
    identity = identity or Identity()
    msg = EmailMessage(policy=default)
    patch = pi.reply_to
    if pi.cover_message_id:
        subject = cover_subject(patch, pi.series_title)
        _headers(msg, identity, subject, patch, [pi.cover_message_id])
    else:
        refs = [*patch.references, patch.message_id or ""]
        _headers(msg, identity, patch.full_subject, patch, refs)
    msg["Message-ID"] = make_msgid(domain=_domain(identity.sender))
    trailers = tags("Tested-by", identity, msg, series=pi.series_id)
    attached = ["config"] if pi.kernel.config is not None else []
    _set_body(msg, pass_body(pi, trailers, attached))
    _attach_config(msg, pi.kernel)
    return msg


def identity_of(config: FarmConfig) -> Identity:
    """The identity [mail] and [report] of farm.toml describe."""
    r = config.report
    return Identity(
        sender=config.mail.sender,
        tag=r.identity,
        archive_url=r.archive_url,
        link_url=r.link_url,
        cc_lists=r.cc_lists,
        list_domains=r.list_domains,
    )
