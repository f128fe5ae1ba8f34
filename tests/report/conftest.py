# SPDX-License-Identifier: Apache-2.0
"""The report tests' SMTP servers: real aiosmtpd on 127.0.0.1 (tests/mailserver.py)."""

from mailserver import plain_smtp_server, smtp_server  # noqa: F401
