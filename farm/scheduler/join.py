# SPDX-License-Identifier: Apache-2.0
"""Join tokens: what a worker on another machine needs to serve the farm, in one file.

A worker reaches the controller through the two services every farm process uses: the
broker (Redis) and the database (PostgreSQL). The controller writes their URLs, with
their passwords, into a join token (``farm join-token``, a 0600 file);
``farm worker --join FILE`` reads it and runs the worker on them instead of the URLs of
its own farm.toml. Nothing else is shared: the worker's farm.toml describes the hosts it
serves, and it registers them in the database when it starts.

The token is one line, ``farm-join-1:`` and the URL-safe base64 of a JSON object: easy
to paste between terminals, not encrypted. It is exactly as secret as the two passwords
it carries; change them to revoke every token. It is never printed and never logged:
errors name the token's file, not its content.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from farm.config import FarmConfig, read_private, redact
from farm.errors import UserError

PREFIX = "farm-join-1:"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class JoinToken:
    broker_url: str
    database_url: str

    def encode(self) -> str:
        body = json.dumps({"broker_url": self.broker_url, "database_url": self.database_url})
        return PREFIX + base64.urlsafe_b64encode(body.encode()).decode()

    def describe(self) -> dict[str, str]:
        """Where the token leads, passwords hidden: for output."""
        return {"broker_url": redact(self.broker_url), "database_url": redact(self.database_url)}


def token_for(config: FarmConfig, address: str | None) -> JoinToken:
    """The token of this controller's farm. A URL on loopback names this machine, which
    another machine reaches at ``address``; without one, such a URL is an error."""
    if config.database_url is None or config.db_url.startswith("sqlite"):
        raise UserError(
            "workers on other machines need a database they can reach; this farm uses SQLite",
            hint="run PostgreSQL and set database_url (docs/operations.md, Scaling out)",
        )
    return JoinToken(
        broker_url=_reachable(config.broker_url, "broker_url", address),
        database_url=_reachable(config.db_url, "database_url", address),
    )


def write_token(token: JoinToken, path: Path) -> None:
    """Write the token to ``path``, private (0600) before it holds the secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as out:
        out.write(token.encode() + "\n")


def read_token(path: Path) -> JoinToken:
    """The token in ``path`` (a private file, see read_private)."""
    text = read_private(path, "join token").strip()
    broken = UserError(
        f"{path} is not a farm join token",
        hint="on the controller: farm join-token --output FILE, then copy FILE here",
    )
    if not text.startswith(PREFIX):
        raise broken
    try:
        data = json.loads(base64.urlsafe_b64decode(text.removeprefix(PREFIX).encode()))
        return JoinToken(str(data["broker_url"]), str(data["database_url"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise broken from exc


def joined(config: FarmConfig, token: JoinToken) -> FarmConfig:
    """``config`` on the token's broker and database; the rest (hosts, timings) is the
    worker's own farm.toml."""
    return config.model_copy(
        update={"broker_url": token.broker_url, "database_url": token.database_url}
    )


def _reachable(url: str, key: str, address: str | None) -> str:
    parts = urlsplit(url)
    if parts.hostname is None or not _is_loopback(parts.hostname):
        return url
    if address is None:
        raise UserError(
            f"{key} {redact(url)} is on loopback: another machine cannot reach it",
            hint="farm join-token --address ADDRESS (the controller's address on the "
            "workers' network; the service must listen there too)",
        )
    userinfo, _, _ = parts.netloc.rpartition("@")
    host = f"[{address}]" if ":" in address else address
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in _LOOPBACK_NAMES
