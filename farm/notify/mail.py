# SPDX-License-Identifier: Apache-2.0
"""Email to the user ([notify] email), never to a list, through the one SMTP sender
(farm.report.mailer) that reports use."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, make_msgid

from farm.config import FarmConfig
from farm.errors import UserError
from farm.notify.event import Event
from farm.report import mailer


def message(event: Event, config: FarmConfig) -> EmailMessage:
    msg = EmailMessage(policy=default)
    try:
        msg["From"] = config.mail.sender
        msg["To"] = config.notify.email or ""
        msg["Subject"] = f"[farm] {' '.join(event.title.split())}"
    except ValueError as exc:
        raise UserError(f"cannot write the notification's headers: {exc}") from exc
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="farm.localhost")
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to farm
    msg.set_content(event.text + "\n" if event.text else event.title + "\n")
    return msg


def send(event: Event, config: FarmConfig) -> bool:
    mailer.send(message(event, config), config.mail)
    return True
