# SPDX-License-Identifier: Apache-2.0
"""Threads straight from a public-inbox archive such as lore.kernel.org, as ``b4 am`` gets them.

``farm submit MSGID`` or ``farm submit https://lore.kernel.org/<list>/<msgid>/`` fetches
``<base>/all/<msgid>/t.mbox.gz`` (public-inbox's documented whole-thread mbox; for a URL,
the URL's own archive and list). b4 itself is not used as a library: its thread fetch
is this one GET, and it would bring a git configuration, pygit2 and global state.

A Message-ID from the user is checked before it goes into a URL: printable ASCII with
one ``@`` and no ``<>``, blanks or control characters, then percent-encoded (``/``, ``%``,
``?``, ``#`` included), so it can never reach another path or host.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass

from farm.errors import InfraError, UserError

_MSGID = re.compile(r"[!-;=?-~]{1,500}@[!-;=?-~]{1,500}")  # printable, no < > or space
_SAFE = "@!$&'()*+,;=:~-._"  # left as is in the path; everything else percent-encoded
# A thread is a few MB; a decompression bomb stops here.
MAX_THREAD_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class LoreThread:
    """Where a thread is: the archive (and list) to ask and the Message-ID."""

    archive: str
    """e.g. ``https://lore.kernel.org/all``"""
    message_id: str
    """without angle brackets"""

    @property
    def url(self) -> str:
        return f"{self.archive}/{urllib.parse.quote(self.message_id, safe=_SAFE)}/t.mbox.gz"


def lore_target(text: str, base: str) -> LoreThread | None:
    """The thread ``text`` names: an http(s) URL of a message in a public-inbox
    archive, or a Message-ID (``<x@y>`` or ``x@y``) asked of ``base``. None when it
    is neither (it is then a path)."""
    if re.match(r"^https?://", text, re.IGNORECASE):
        return _from_url(text)
    if "@" not in text or "/" in text:
        return None
    return LoreThread(f"{base.rstrip('/')}/all", checked_message_id(text))


def checked_message_id(text: str) -> str:
    """A Message-ID without its angle brackets, or a UserError saying what is wrong."""
    bare = text.strip()
    if bare.startswith("<") and bare.endswith(">"):
        bare = bare[1:-1]
    if not _MSGID.fullmatch(bare):
        raise UserError(
            f"{text[:120]!r} is not a Message-ID "
            "(printable characters around one @, without spaces or <>)",
            hint="farm submit 20231114-fix-v2-1-abc@example.org   # or a lore URL, or an mbox",
        )
    return bare


def _from_url(url: str) -> LoreThread:
    parts = urllib.parse.urlsplit(url)
    segments = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
    found = next((i for i, s in enumerate(segments) if "@" in s), None)
    if found is None or not parts.hostname:
        raise UserError(
            f"{url[:200]} names no message: expected .../<list>/<message-id>/",
            hint="farm submit https://lore.kernel.org/all/<message-id>/",
        )
    message_id = checked_message_id(segments[found])
    archive_path = "/".join(urllib.parse.quote(s, safe=_SAFE) for s in segments[:found])
    if found == 0 or segments[found - 1] == "r":  # /r/<msgid> redirects: ask all lists
        archive_path = "/".join([*archive_path.split("/")[:-1], "all"]).lstrip("/")
    return LoreThread(f"{parts.scheme}://{parts.netloc}/{archive_path}", message_id)


def fetch_thread(thread: LoreThread, timeout: float) -> bytes:
    """The thread as an mbox; UserError when the archive has no such message,
    InfraError when the archive cannot be reached or answers with an error."""
    if not thread.url.startswith(("http://", "https://")):  # never file: or ftp:
        raise UserError(f"{thread.url}: farm fetches threads over http(s) only")
    request = urllib.request.Request(thread.url, headers={"User-Agent": "farm"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            compressed = response.read(MAX_THREAD_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code in (404, 410):
            raise UserError(
                f"{thread.archive} has no message <{thread.message_id}>",
                hint="check the Message-ID (copy it from the archive's page), "
                "or the archive: [intake] lore_url in farm.toml",
            ) from error
        raise InfraError(
            f"{thread.url} answered HTTP {error.code} {error.reason}",
            hint="try again later; the archive may be overloaded",
        ) from error
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise InfraError(
            f"cannot reach {thread.archive}: {reason}",
            hint="check the network, or set [intake] lore_url in farm.toml to a reachable "
            "archive; offline: b4 am -o - MSGID | farm submit -",
        ) from error
    return _gunzip(compressed, thread)


def _gunzip(data: bytes, thread: LoreThread) -> bytes:
    if len(data) > MAX_THREAD_BYTES:
        raise UserError(f"the thread at {thread.url} is larger than {MAX_THREAD_BYTES} bytes")
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib header
    try:
        mbox = inflate.decompress(data, MAX_THREAD_BYTES)
    except zlib.error as error:
        raise InfraError(
            f"{thread.url} did not send a gzip-compressed mbox: {error}",
            hint="is [intake] lore_url a public-inbox archive?",
        ) from error
    if inflate.unconsumed_tail:
        raise UserError(f"the thread at {thread.url} is larger than {MAX_THREAD_BYTES} bytes")
    return mbox
