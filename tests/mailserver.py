# SPDX-License-Identifier: Apache-2.0
"""A real SMTP submission server on 127.0.0.1 (aiosmtpd) that insists on STARTTLS with a
certificate made here (cryptography) and on a login, and keeps what it was given."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from netutil import free_port

from farm.config import MailConfig

USER = "farm-bot"
PASSWORD = "s3cret pass; word"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "farm test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None


@dataclass
class MailServer:
    port: int
    ca_file: Path
    password_file: Path
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)

    def mail_config(self, **changes: Any) -> MailConfig:
        values: dict[str, Any] = {
            "sender": "Farm Bot <farm-bot@example.org>",
            "smtp": f"127.0.0.1:{self.port}",
            "security": "starttls",
            "user": USER,
            "password_file": self.password_file,
            "ca_file": self.ca_file,
            "timeout": 10,
        }
        return MailConfig(**{**values, **changes})

    def toml(self) -> str:
        """The [mail] section of a farm.toml that sends here."""
        return (
            "[mail]\n"
            'from = "Farm Bot <farm-bot@example.org>"\n'
            f'smtp = "127.0.0.1:{self.port}"\n'
            f'user = "{USER}"\n'
            f'password_file = "{self.password_file}"\n'
            f'ca_file = "{self.ca_file}"\n'
        )

    # aiosmtpd handler and authenticator
    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                tls=session.ssl is not None,
                login=(
                    session.auth_data.login.decode()
                    if isinstance(session.auth_data, LoginPassword)
                    else None
                ),
            )
        )
        return "250 OK"

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
        self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def start_mail_server(directory: Path, *, secure: bool = True) -> tuple[MailServer, Controller]:
    """The server; ``secure=False``: plain SMTP, no login (what git send-email without
    Perl's TLS modules talks to)."""
    import ssl

    cert, key = make_certificate(directory)
    password_file = directory / "smtp-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    server = MailServer(port=free_port(), ca_file=cert, password_file=password_file)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    options: dict[str, Any] = (
        {
            "tls_context": tls,
            "require_starttls": True,
            "authenticator": server,
            "auth_required": True,
        }
        if secure
        else {}
    )
    controller = Controller(server, hostname="127.0.0.1", port=server.port, **options)
    controller.start()
    return server, controller


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[MailServer]:
    """STARTTLS with a certificate made for the test, and a login."""
    server, controller = start_mail_server(tmp_path)
    yield server
    controller.stop()


@pytest.fixture
def plain_smtp_server(tmp_path: Path) -> Iterator[MailServer]:
    """Plain SMTP without login, for git send-email."""
    server, controller = start_mail_server(tmp_path, secure=False)
    yield server
    controller.stop()
