# SPDX-License-Identifier: Apache-2.0
"""Reading patch mail: an mbox, a maildir, a directory of format-patch files, one message.

Headers are decoded here once (RFC 2047 words, 8-bit and non-UTF-8 bytes) and cleaned:
everything from an email is data, so control characters such as an embedded newline
become spaces and can never start another header, line or command.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

from farm.errors import UserError

# A separator line of an mbox: "From <sender> <asctime date>". Requiring the whole date
# keeps a "From here on..." line of a commit message from splitting a patch in two.
_FROM_LINE = re.compile(
    rb"^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +[A-Z][a-z]{2} +\d{1,2} +"
    rb"\d{1,2}:\d\d(?::\d\d)?(?: +[+-]?\w+)? +\d{4}\b[^\n]*$",
    re.MULTILINE,
)
_MBOXRD_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t]+(=\?)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ESCAPED = re.compile("[\udc80-\udcff]")
_MSGID = re.compile(r"<[^<>\s]+>")
_MIME_HEADERS = ("mime-version", "content-type", "content-transfer-encoding")
_PARSER = BytesParser(policy=compat32)


@dataclass(frozen=True)
class Mail:
    """One message, headers decoded and cleaned, body decoded to text."""

    origin: str
    subject: str
    author: str
    date: str | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    body: str
    mime_headers: tuple[str, ...]
    """Cleaned ``Content-Type``-like header lines that git am needs to decode the body."""
    raw_body: bytes
    raw: bytes


def read_mails(path: Path) -> list[Mail]:
    """Every message under ``path``, in the order found; a UserError if there is none."""
    mails = [mail for raw, origin in _sources(path) if (mail := parse_mail(raw, origin))]
    if not mails:
        raise UserError(
            f"{path}: no mail messages found "
            "(expected an mbox, a maildir or a directory of git format-patch files)",
            hint="b4 am -o . <message-id>   # or: git format-patch --cover-letter --thread -o DIR",
        )
    return mails


def mails_from_bytes(data: bytes, origin: str) -> list[Mail]:
    """The messages of an mbox held in memory (standard input, a fetched thread)."""
    parts = split_mbox(data)
    named = [(raw, f"{origin}#{n}" if len(parts) > 1 else origin) for n, raw in enumerate(parts, 1)]
    mails = [mail for raw, name in named if (mail := parse_mail(raw, name))]
    if not mails:
        raise UserError(
            f"{origin}: no mail messages found",
            hint="b4 am -o - <message-id> | farm submit -",
        )
    return mails


def _sources(path: Path) -> list[tuple[bytes, str]]:
    if path.is_file() and path.suffix == ".mbx" and path.with_suffix(".cover").is_file():
        files = [path.with_suffix(".cover"), path]  # what `b4 am -o DIR` writes side by side
        return [(raw, f.name) for f in files for raw in split_mbox(_read(f))]
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            files = sorted([*_files(path / "cur"), *_files(path / "new")])
        else:
            files = sorted(_files(path))
    elif path.is_file():
        files = [path]
    else:
        raise UserError(f"{path}: no such file or directory", hint="farm submit PATH/TO/x.mbox")
    found = []
    for file in files:
        parts = split_mbox(_read(file))
        name = file.name if file == path else str(file.relative_to(path))
        for n, raw in enumerate(parts, 1):
            found.append((raw, f"{name}#{n}" if len(parts) > 1 else name))
    return found


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise UserError(f"{file}: cannot read: {exc.strerror}") from exc


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox (mboxo or mboxrd); a file without separators is one message."""
    starts = [m.start() for m in _FROM_LINE.finditer(data)]
    if not starts:
        return [data] if data.strip() else []
    bounds = [*starts, len(data)]
    messages = []
    for start, end in itertools.pairwise(bounds):
        body_start = data.find(b"\n", start, end)
        chunk = data[body_start + 1 : end] if body_start >= 0 else b""
        messages.append(_MBOXRD_QUOTED.sub(rb"\1", chunk))
    return messages


def parse_mail(raw: bytes, origin: str) -> Mail | None:
    """A Mail, or None when ``raw`` has neither a Subject nor a From header."""
    msg = _PARSER.parsebytes(raw)
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(_FOLD.sub("", value))
    if "subject" not in headers and "from" not in headers:
        return None
    charset = _charset(msg)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return decode_header_value(values[0], charset) if values else None

    refs = " ".join(headers.get("references", []))
    end = _HEADER_END.search(raw)
    return Mail(
        origin=origin,
        subject=first("subject") or "",
        author=(_addresses(headers.get("from", []), charset) or ("unknown",))[0],
        date=first("date"),
        message_id=_msgid(headers.get("message-id", [""])[0]),
        in_reply_to=_msgid(headers.get("in-reply-to", [""])[0]),
        references=tuple(_MSGID.findall(refs)),
        to=_addresses(headers.get("to", []), charset),
        cc=_addresses(headers.get("cc", []), charset),
        body=body_text(msg),
        mime_headers=tuple(
            f"{name}: {clean(value)}"
            for name, value in msg.raw_items()
            if name.lower() in _MIME_HEADERS
        ),
        raw_body=raw[end.end() :] if end else b"",
        raw=raw,
    )


def _charset(msg: Message) -> str | None:
    try:
        return msg.get_content_charset()
    except (UnicodeError, LookupError):
        return None


def _msgid(value: str) -> str | None:
    match = _MSGID.search(_undo_8bit(value, None))
    return clean(match.group(0)) if match else None


def _addresses(values: list[str], charset: str | None) -> tuple[str, ...]:
    out = []
    for name, addr in getaddresses([_undo_8bit(v, charset) for v in values]):
        name, addr = decode_header_value(name, charset), clean(addr)
        if addr or name:
            out.append(f"{name} <{addr}>" if name and addr else addr or name)
    return tuple(out)


def decode_header_value(value: str, charset: str | None = None) -> str:
    """A raw header value as clean text: unfolded, RFC 2047 words and 8-bit bytes decoded."""
    text = _BETWEEN_WORDS.sub(r"\1\2", _undo_8bit(_FOLD.sub("", value), charset))
    return clean(_ENCODED_WORD.sub(_decode_word, text))


def clean(text: str) -> str:
    """Control characters (newlines included) become one space; no leading/trailing blanks."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _undo_8bit(value: str, charset: str | None) -> str:
    """Header bytes outside ASCII arrive surrogate-escaped; decode them for real."""
    if not _ESCAPED.search(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), charset)


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.group(1).split("*")[0], match.group(2), match.group(3)
    try:
        if encoding in "qQ":
            data = binascii.a2b_qp(text.replace("_", " ").encode("ascii"), header=True)
        else:
            data = base64.b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return match.group(0)
    return decode_bytes(data, charset)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text in the declared charset, else UTF-8, else Latin-1 (which never fails)."""
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def body_text(msg: Message) -> str:
    """The text parts of a message, transfer-decoded (QP, base64) and charset-decoded,
    with CRLF line ends made LF: the trailers and the diff are read line by line, and
    a mail saved with CRLF must not lose its ``base-commit:``."""
    parts = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            parts.append(decode_bytes(payload, _charset(part)).replace("\r\n", "\n"))
    return "\n".join(parts)
