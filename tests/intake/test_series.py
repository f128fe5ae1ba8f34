# SPDX-License-Identifier: Apache-2.0
"""From mail to a series: ordering, replies, versions, gaps, duplicates, trailers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from farm.errors import UserError
from farm.intake.mbox import read_mails
from farm.intake.series import ParsedSeries, group_series, parse_selection

from .conftest import MBOXES


def series(name: str) -> ParsedSeries:
    return group_series(read_mails(MBOXES / name), source=name)


def test_a_real_series_reads_title_version_trailers_and_patches() -> None:
    s = series("series-v2.mbox")
    assert (s.title, s.version, s.total, s.missing) == (
        "mm: fix deferred split accounting",
        2,
        5,
        [],
    )
    assert s.base_commit == "6a3b1d5a2f0504c23e7652c3bc56653aef14b12d"
    assert s.change_id == "20231114-deferred-split-a1b2c3"
    assert [p.subject for p in s.patches][:2] == ["mm/thp: return 33", "mm/vmscan: scan more"]
    assert s.patches[0].files == ("mm/huge_memory.c",)


def test_the_in_body_from_names_the_author_not_the_sender() -> None:
    s = series("series-v2.mbox")
    assert s.patches[1].mail.author == "Ada Lovelace <ada@example.org>"
    assert s.patches[1].author == "Jürgen Groß <jgross@example.com>"


def test_patches_are_ordered_by_number_not_by_mbox_order() -> None:
    mails = read_mails(MBOXES / "series-v2.mbox")
    random.Random(7).shuffle(mails)
    assert [p.index for p in group_series(mails).patches] == [1, 2, 3, 4, 5]


def test_replies_in_the_thread_are_ignored_and_counted() -> None:
    s = series("thread-with-replies.mbox")
    assert [p.index for p in s.patches] == [1, 2, 3, 4, 5]
    assert s.warnings == ["ignored 3 replies or other messages without a patch"]
    assert all("Rev Iewer" not in p.author for p in s.patches)


def test_mixed_versions_take_the_newest_complete_and_say_so() -> None:
    s = series("mixed-versions.mbox")
    assert s.version == 2
    assert "v3 (4 of 5)" in s.warnings[-1]
    assert "using v2 (5 of 5), the newest complete" in s.warnings[-1]


def test_a_gap_is_an_error_that_lists_the_missing_numbers() -> None:
    s = series("gap.mbox")
    assert s.missing == [3, 5]
    with pytest.raises(UserError, match=r"missing patch 3, 5 of 5") as error:
        s.check_complete(allow_incomplete=False)
    assert "--allow-incomplete" in str(error.value)


def test_allow_incomplete_turns_a_gap_into_a_warning() -> None:
    s = series("gap.mbox")
    s.check_complete(allow_incomplete=True)
    assert s.summary()["missing"] == [3, 5]
    assert "missing patch 3, 5" in s.warnings[-1]


def test_a_resent_identical_patch_is_not_a_duplicate_but_a_different_one_is() -> None:
    s = series("duplicates.mbox")
    assert "patch 2 appears 2 times with the same diff" in s.warnings
    assert s.duplicates == [5]
    with pytest.raises(UserError, match="patch 5 sent twice with different diffs"):
        s.check_complete(allow_incomplete=False)


def test_selection_by_upto_or_list() -> None:
    s = series("series-v2.mbox")
    assert [p.index for p in s.select(upto=3)] == [1, 2, 3]
    assert [p.index for p in s.select(patches=parse_selection("1-2,5"))] == [1, 2, 5]
    with pytest.raises(UserError, match="no patch 9"):
        s.select(patches=[9])
    with pytest.raises(UserError, match="exclude each other"):
        s.select(upto=2, patches=[1])


def test_selecting_a_missing_patch_is_refused() -> None:
    s = series("gap.mbox")
    with pytest.raises(UserError, match="cannot apply patch 3"):
        s.select(upto=4)


@pytest.mark.parametrize(("spec", "numbers"), [("1-7,9", [1, 2, 3, 4, 5, 6, 7, 9]), ("3", [3])])
def test_selections_parse(spec: str, numbers: list[int]) -> None:
    assert parse_selection(spec) == numbers


@pytest.mark.parametrize("spec", ["", "a", "7-1", "1;2", "1-"])
def test_bad_selections_show_an_example(spec: str) -> None:
    with pytest.raises(UserError, match="1-7,9"):
        parse_selection(spec)


def test_an_mbox_of_only_discussion_has_no_patches() -> None:
    mails = [m for m in read_mails(MBOXES / "thread-with-replies.mbox") if "Re:" in m.subject]
    with pytest.raises(UserError, match="no patches among 3 messages"):
        group_series(mails)


def test_prerequisite_patch_ids_are_read_from_the_base_block(tmp_path: Path) -> None:
    prereq = "b" * 40
    text = (MBOXES / "series-v2.mbox").read_bytes()
    marker = b"base-commit: 6a3b1d5a2f0504c23e7652c3bc56653aef14b12d\n"
    changed = text.replace(marker, marker + f"prerequisite-patch-id: {prereq}\n".encode(), 1)
    (tmp_path / "prereq.mbox").write_bytes(changed)
    s = group_series(read_mails(tmp_path / "prereq.mbox"))
    assert s.prerequisite_patch_ids == [prereq]


def test_a_single_unnumbered_patch_without_message_id_is_a_series_of_one(tmp_path: Path) -> None:
    patch = read_mails(MBOXES / "series-v2.mbox")[1]
    raw = patch.raw.replace(b"[PATCH v2 1/5]", b"[PATCH]")
    raw = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"Message-Id"))
    (tmp_path / "one.patch").write_bytes(raw)
    s = group_series(read_mails(tmp_path / "one.patch"))
    assert (s.total, s.version, s.title) == (1, 1, "mm/thp: return 33")
    assert s.summary()["patches"][0]["message_id"] is None


def renumbered(tmp_path: Path, total: int, keep: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Path:
    """series-v2.mbox, its five patches claiming to be ``keep`` of a series of ``total``."""
    text = (
        (MBOXES / "series-v2.mbox")
        .read_bytes()
        .replace(b"[PATCH v2 0/5]", b"[PATCH v2 0/%d]" % total)
    )
    for n, number in zip(range(1, 6), keep, strict=True):
        text = text.replace(b"[PATCH v2 %d/5]" % n, b"[PATCH v2 %d/%d]" % (number, total))
    path = tmp_path / f"of-{total}.mbox"
    path.write_bytes(text)
    return path


def test_a_subject_numbering_more_patches_than_the_limit_is_refused(tmp_path: Path) -> None:
    mails = read_mails(renumbered(tmp_path, 1000))
    with pytest.raises(UserError, match=r"farm reads at most 999 patches") as refused:
        group_series(mails)
    assert "of-1000.mbox#1: subject '[PATCH v2 0/1000] mm: fix" in str(refused.value)
    assert "[intake] max_patches" in str(refused.value)
    assert group_series(mails, max_patches=1000).total == 1000


def test_the_limit_can_be_lowered(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"at most 4 patches"):
        group_series(read_mails(MBOXES / "series-v2.mbox"), max_patches=4)


def test_a_long_gap_names_a_few_missing_numbers_and_counts_the_rest(tmp_path: Path) -> None:
    s = group_series(read_mails(renumbered(tmp_path, 999, keep=(1, 2, 4, 6, 8))))
    assert len(s.missing) == 994
    with pytest.raises(UserError) as error:
        s.check_complete(allow_incomplete=False)
    assert "missing patch 3, 5, 7 and 991 more of 999" in str(error.value)
    assert len(str(error.value)) < 300


def test_a_selection_beyond_any_series_is_refused_before_it_is_built() -> None:
    with pytest.raises(UserError, match=r"'1-100000' goes up to patch 100000"):
        parse_selection("1-100000")  # farm submit does not build a set of 10^8 either
    assert parse_selection("7-9", limit=9) == [7, 8, 9]
    with pytest.raises(UserError, match="at most 8 patches"):
        parse_selection("7-9", limit=8)


def test_upto_beyond_the_series_names_one_number() -> None:
    s = series("series-v2.mbox")
    with pytest.raises(UserError, match=r"has no patch 1000 \(it has 5\)"):
        s.select(upto=1000)


def test_crlf_line_endings_keep_every_trailer(tmp_path: Path) -> None:
    lf = series("series-v2.mbox")
    prereq = "b" * 40
    text = (MBOXES / "series-v2.mbox").read_bytes()
    marker = b"base-commit: 6a3b1d5a2f0504c23e7652c3bc56653aef14b12d\n"
    text = text.replace(marker, marker + f"prerequisite-patch-id: {prereq}\n".encode(), 1)
    (tmp_path / "crlf.mbox").write_bytes(text.replace(b"\n", b"\r\n"))
    crlf = group_series(read_mails(tmp_path / "crlf.mbox"))
    assert (crlf.base_commit, crlf.change_id) == (lf.base_commit, lf.change_id)
    assert crlf.prerequisite_patch_ids == [prereq]
    assert [p.diff for p in crlf.patches] == [p.diff for p in lf.patches]
    assert crlf.patches[1].author == "Jürgen Groß <jgross@example.com>"


def unversioned(text: bytes, cover_version: int, tag: bytes) -> bytes:
    """series-v2.mbox as some senders make it: the version on the cover only (and the
    Message-IDs made distinct with ``tag``, as a second sending has)."""
    text = text.replace(b"[PATCH v2 0/5]", b"[PATCH v%d 00/05]" % cover_version)
    for n in range(1, 6):
        text = text.replace(b"[PATCH v2 %d/5]" % n, b"[PATCH %02d/05]" % n)
    return text.replace(b"@", b"." + tag + b"@")


def test_two_covers_over_unversioned_patches_each_give_their_own_version(
    tmp_path: Path,
) -> None:
    text = (MBOXES / "series-v2.mbox").read_bytes()
    path = tmp_path / "covers.mbox"
    path.write_bytes(unversioned(text, 2, b"two") + unversioned(text, 3, b"three"))
    s = group_series(read_mails(path))
    assert (s.version, s.total, s.missing) == (3, 5, [])
    assert all(".three@" in (p.mail.message_id or "") for p in s.patches)
    assert sum("taking v3 from the cover" in w for w in s.warnings) == 1
    assert "also holds v2 (5 of 5)" in s.warnings[-1]


def test_a_numbered_patch_without_a_diff_is_named_when_the_series_is_refused(
    tmp_path: Path,
) -> None:
    text = (MBOXES / "series-v2.mbox").read_text()
    head, rest = text.split("Subject: [PATCH v2 3/5]", 1)
    body_end = rest.index("\nFrom ")
    patch3 = rest[:body_end]
    path = tmp_path / "empty3.mbox"
    path.write_text(
        head + "Subject: [PATCH v2 3/5]" + patch3.split("\ndiff --git")[0] + rest[body_end:]
    )
    s = group_series(read_mails(path))
    assert (s.missing, s.without_diff) == ([3], [3])
    with pytest.raises(UserError, match="missing patch 3 of 5; patch 3 came without a diff"):
        s.check_complete(allow_incomplete=False)
