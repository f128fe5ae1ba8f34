# SPDX-License-Identifier: Apache-2.0
"""Subject prefixes: what a message is, which version, which slot."""

from __future__ import annotations

import pytest

from farm.intake.subject import parse_subject


@pytest.mark.parametrize(
    ("line", "version", "index", "total", "subject"),
    [
        ("[PATCH] mm: fix it", 1, None, None, "mm: fix it"),
        ("[PATCH v3 07/28] mm: fix it", 3, 7, 28, "mm: fix it"),
        ("[PATCH RFC 07/28] mm: fix it", 1, 7, 28, "mm: fix it"),
        ("[RFC PATCH net-next v2 3/9] net: go", 2, 3, 9, "net: go"),
        ("[PATCH 0/28] mm: a series", 1, 0, 28, "mm: a series"),
        ("[PATCHv4 2/2] x", 4, 2, 2, "x"),
        ("[PATCH V2] x", 2, None, None, "x"),
        ("[PATCH 1/3 v2] x", 2, 1, 3, "x"),
        ("[linux-next] [PATCH v2 RESEND 1/2] x", 2, 1, 2, "x"),
        ("[PATCH net,v5 4/6] x", 5, 4, 6, "x"),
        ("[Patch]: Fix ld pr11138 FAILures", 1, None, None, "Fix ld pr11138 FAILures"),
        ("[Patch 2/2]: powerpc/hotplug/mm: Fix", 1, 2, 2, "powerpc/hotplug/mm: Fix"),
        ("[PATCH 1 of 2] contrib: fix check-commit", 1, 1, 2, "contrib: fix check-commit"),
    ],
)
def test_prefixes_give_version_slot_and_clean_subject(
    line: str, version: int, index: int | None, total: int | None, subject: str
) -> None:
    info = parse_subject(line)
    assert info.is_patch and not info.is_reply
    assert (info.version, info.index, info.total, info.subject) == (version, index, total, subject)


def test_rfc_resend_and_other_tags_are_kept() -> None:
    info = parse_subject("[RFC PATCH net-next v2 RESEND 3/9] net: go")
    assert info.rfc and info.resend
    assert info.tags == ("net-next",)


@pytest.mark.parametrize(
    "line",
    [
        "Re: [PATCH v2 3/9] x",
        "RE: Re: [PATCH] x",
        "Aw: [PATCH 1/2] x",
        "AW: [PATCH v2 1/4] leds: lp50xx: add setting",
        "[list] Re: [PATCH 1/2] x",
        "答复: [PATCH][v4] virt: tdx-guest: Don't free decrypted memory",
        "回复: [PATCH 1/2] x",
        "回复：[PATCH 1/2] x",  # full-width colon
        "Antw: [PATCH v2] scsi: avoid potential deadloop in iscsi_if_rx func",
        "SV: [PATCH] x",
    ],
)
def test_replies_are_recognised(line: str) -> None:
    assert parse_subject(line).is_reply


@pytest.mark.parametrize("line", ["hello", "[GIT PULL] mm for 6.16", "", "[] x", "[PATCH 9/3] x"])
def test_odd_subjects_are_not_numbered_patches(line: str) -> None:
    info = parse_subject(line)
    assert info.index is None
    assert not info.is_reply


@pytest.mark.parametrize(
    "line",
    [
        "[GIT PULL] mm for 6.16",
        "[git pull] Please pull powerpc.git next branch",
        "[GIT] Networking",
    ],
)
def test_pull_requests_are_told_from_patches(line: str) -> None:
    info = parse_subject(line)
    assert info.pull and not info.is_patch


def test_a_counter_of_thousands_of_digits_is_read_not_a_crash() -> None:
    info = parse_subject(f"[PATCH v{'9' * 5000} 1/{'9' * 5000}] x")  # int() refuses 4301+
    assert info.is_patch and info.total is not None and info.total > 10**17
