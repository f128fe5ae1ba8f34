# SPDX-License-Identifier: Apache-2.0
"""Reading mail: mbox, maildir, format-patch directories; headers decoded and cleaned."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm.errors import UserError
from farm.intake.mbox import decode_header_value, parse_mail, read_mails, split_mbox
from farm.intake.series import group_series

from .conftest import MBOXES


def test_a_format_patch_mbox_holds_cover_and_patches_in_order() -> None:
    mails = read_mails(MBOXES / "series-v2.mbox")
    assert [m.subject.split("]")[0] for m in mails] == [f"[PATCH v2 {n}/5" for n in range(6)]
    assert mails[1].message_id and mails[1].message_id.startswith("<")
    assert mails[1].in_reply_to == mails[0].message_id
    assert mails[1].references == (mails[0].message_id,)
    assert mails[1].to == ("linux-mm@kvack.org",)
    assert mails[1].cc == ("Andrew Morton <akpm@linux-foundation.org>",)


def test_a_from_line_in_a_commit_message_does_not_split_the_message() -> None:
    data = (
        b"From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 1/2] a\n\n"
        b"From here on at 10:30 in 2024 things change.\n"
        b"From mboxrd@z Thu Jan  1 00:00:00 1970\nSubject: [PATCH 2/2] b\n\n>From quoted\n"
    )
    first, second = split_mbox(data)
    assert b"From here on" in first
    assert second.endswith(b"\nFrom quoted\n"), "mboxrd quoting is undone"


def test_a_directory_of_format_patch_files(fresh_series: Path) -> None:
    mails = read_mails(fresh_series)
    assert len(mails) == 6
    assert mails[0].origin == "0000-cover-letter.patch"


def test_a_maildir(fresh_series: Path, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for n, file in enumerate(sorted(fresh_series.iterdir())):
        shutil.copy(file, maildir / ("cur" if n % 2 else "new") / f"{n}.host:2,S")
    assert len(read_mails(maildir)) == 6


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("=?utf-8?q?caf=C3=A9_au_lait?=", "café au lait"),
        ("=?ISO-8859-1?B?SvxyZ2Vu?= Gro=?utf-8?q?=C3=9F?=", "Jürgen Groß"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("=?x-unknown?q?caf=E9?=", "café"),
        ("=?utf-8?q?innocent=0ASigned-off-by:_evil?=", "innocent Signed-off-by: evil"),
        ("line one\r\n\tfolded", "line one folded"),
        ("bell\x07 and \x1b[31mred", "bell and [31mred"),
    ],
)
def test_headers_are_decoded_and_control_characters_removed(raw: str, text: str) -> None:
    assert decode_header_value(raw) == text


def test_non_utf8_8bit_headers_use_the_message_charset() -> None:
    raw = (
        b"From: J\xfcrgen Gro\xdf <jg@example.com>\nSubject: [PATCH] caf\xe9\n"
        b"Content-Type: text/plain; charset=ISO-8859-1\n\nbody\n"
    )
    mail = parse_mail(raw, "x")
    assert mail is not None
    assert (mail.author, mail.subject) == ("Jürgen Groß <jg@example.com>", "[PATCH] café")


def test_a_quoted_printable_body_is_decoded() -> None:
    mails = read_mails(MBOXES / "encoded-headers.mbox")
    assert "diff --git a/mm/huge_memory.c" in mails[1].body
    assert mails[1].subject == "[PATCH v2 1/5] mm/thp: return 33 à la façon"
    assert group_series(mails).patches[1].author == "Jürgen Groß <jgross@example.com>"


def test_a_message_id_is_taken_alone_even_with_a_folded_header_after_it() -> None:
    raw = b"Subject: x\nMessage-ID: <a@b>\n Cc: evil@x\n\nbody\n"
    mail = parse_mail(raw, "x")
    assert mail is not None and mail.message_id == "<a@b>"


@pytest.mark.parametrize("name", ["garbage.bin", "empty", "notes.txt"])
def test_input_without_mail_is_a_clear_error(name: str, tmp_path: Path) -> None:
    source = MBOXES / name
    if not source.exists():
        source = tmp_path / name
        source.write_text("" if name == "empty" else "just some notes\nno headers here\n")
    with pytest.raises(UserError, match="no mail messages found"):
        read_mails(source)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.mbox: no such file"):
        read_mails(tmp_path / "nope.mbox")
