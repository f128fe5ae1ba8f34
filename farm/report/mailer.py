# SPDX-License-Identifier: Apache-2.0
"""The one way farm sends mail: SMTP with STARTTLS (or implicit TLS) and a login whose
password is read from a file at sending time, for reports and notifications alike; and
the same message as an mbox file that ``git send-email`` takes instead.

The password never leaves this module: not in an error, not in a log line. smtplib's
debug output (which would show the AUTH exchange) is never switched on.
"""

from __future__ import annotations

import io
import smtplib
import ssl
import time
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import getaddresses

from farm.config import MailConfig, read_secret
from farm.errors import InfraError, UserError


def recipients(msg: EmailMessage) -> list[str]:
    """Envelope recipients: To and Cc (a Bcc is never written by farm)."""
    return [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]


def _tls_context(mail: MailConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if mail.ca_file is not None:
        context.load_verify_locations(cafile=str(mail.ca_file))
    return context


def _connect(mail: MailConfig, server: str) -> smtplib.SMTP:
    host, _, port = server.rpartition(":") if ":" in server else (server, "", "")
    if mail.security == "tls":
        return smtplib.SMTP_SSL(
            host, int(port or 465), timeout=mail.timeout, context=_tls_context(mail)
        )
    smtp = smtplib.SMTP(host, int(port or (587 if mail.security == "starttls" else 25)),
                        timeout=mail.timeout)  # fmt: skip
    if mail.security == "starttls":
        smtp.starttls(context=_tls_context(mail))
    return smtp


def send(msg: EmailMessage, mail: MailConfig, dry_run: bool = False) -> list[str]:
    """Send ``msg`` through ``mail.smtp``; the envelope recipients. With ``dry_run``,
    only the recipients (no connection)."""
    to = recipients(msg)
    if dry_run:
        return to
    if mail.smtp is None:
        raise UserError(
            "no SMTP server configured",
            hint="set mail.smtp in farm.toml, or write the mail with -o and use git send-email",
        )
    try:
        with _connect(mail, mail.smtp) as smtp:
            if mail.user:
                assert mail.password_file is not None  # MailConfig's validator
                smtp.login(mail.user, read_secret(mail.password_file, "SMTP password"))
            smtp.send_message(msg, to_addrs=to)
    except smtplib.SMTPAuthenticationError as exc:
        raise UserError(
            f"SMTP server {mail.smtp} refused the login of {mail.user}: {exc.smtp_code}",
            hint=f"check the password in {mail.password_file}",
        ) from exc
    except ssl.SSLError as exc:
        raise InfraError(
            f"TLS with SMTP server {mail.smtp} failed: {exc.reason or exc}",
            hint="mail.ca_file names the CA of a private relay",
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise InfraError(f"SMTP server {mail.smtp} did not take the mail: {exc}") from exc
    return to


def as_mbox(msg: EmailMessage) -> bytes:
    """One-message mbox, as ``git format-patch`` writes it: ``git send-email FILE``
    sends it with its headers (In-Reply-To, References) as they are."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    out = io.BytesIO()
    out.write(f"From farm {stamp}\n".encode())
    BytesGenerator(out, mangle_from_=True, policy=msg.policy).flatten(msg)  # ">From " lines
    return out.getvalue()
