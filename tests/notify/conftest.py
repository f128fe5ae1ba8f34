# SPDX-License-Identifier: Apache-2.0
"""The notification tests' SMTP server: real aiosmtpd on 127.0.0.1 (tests/mailserver.py)."""

from mailserver import smtp_server  # noqa: F401
