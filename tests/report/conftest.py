# SPDX-License-Identifier: Apache-2.0
"""The report tests' SMTP servers: real aiosmtpd on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mailserver import MailServer, start_mail_server


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
