# SPDX-License-Identifier: Apache-2.0
"""Intake on real mail from other projects (patchwork's and b4's test mail, list
archives), each file's answer written down before farm read it (tests/fixtures/mail)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from farm.errors import UserError
from farm.intake.mbox import read_mails
from farm.intake.series import ParsedSeries, group_series

from .realmail import CORPUS, expectations, judge, table


def test_every_file_of_the_corpus_has_a_written_answer() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".mbox", ".eml")}
    assert files == {e["path"] for e in expectations()}


def test_intake_is_right_on_at_least_98_percent_of_real_mail() -> None:
    verdicts = [judge(e) for e in expectations()]
    wrong = [f"{v.path}: {v.why}" for v in verdicts if not v.right]
    right, total = table(verdicts)[-1][1:]
    assert right / total >= 0.98, "\n".join(wrong)


@pytest.mark.parametrize(
    "name",
    [
        "trailers-followup-single",
        "trailers-followup-bare-address",
        "trailers-followup-htmljunk",
        "trailers-followup-name-parens",
        "trailers-followup-non-git-patch",
        "trailers-followup-nore",
        "trailers-followup-stripped-lines",
        "trailers-followup-with-cover",
        "trailers-followup-with-diffstat",
    ],
)
def test_trailers_from_replies_are_those_b4_am_adds(name: str) -> None:
    series = group_series(read_mails(CORPUS / "b4" / f"{name}.mbox"))
    for patch in series.patches:
        added = [t.line for t in series.trailers.get(patch.index, [])]
        assert added == _b4_added(name, patch.subject, patch.mail.body)


def _b4_added(name: str, subject: str, body: str) -> list[str]:
    """The trailers b4's expected output has for this patch beyond those it came with
    (b4 also signs off as the user running it: not a collected trailer)."""
    reference = (CORPUS / "b4" / f"{name}-ref-defaults.txt").read_text()
    for message in re.split(r"^From git@z ", reference, flags=re.MULTILINE)[1:]:
        if re.search(rf"^Subject: \[PATCH[^\]]*\] {re.escape(subject)}$", message, re.M):
            head = message.split("\ndiff ", 1)[0].split("\n---\n", 1)[0]
            lines = re.findall(r"^([A-Z][\w-]*-by: .*)$", head, re.MULTILINE)
            own = set(re.findall(r"^([A-Z][\w-]*-by: .*)$", body, re.MULTILINE))
            return [t for t in lines if t not in own and "Test Override" not in t]
    raise AssertionError(f"{subject} not in {name}-ref-defaults.txt")


def _series(path: str) -> ParsedSeries:
    return group_series(read_mails(CORPUS / path), source=Path(path).name)


@pytest.mark.parametrize(
    "path",
    [
        "derived/aw-replies-with-trailers.mbox",
        "derived/chinese-replies-with-trailers.mbox",
        "b4/trailers-followup-with-cover.mbox",
    ],
)
def test_replies_in_any_language_are_never_patches(path: str) -> None:
    series = _series(path)
    assert [p.mail.message_id for p in series.patches] == [
        "<patch-1-message@example.com>",
        "<patch-2-message@example.com>",
    ]
    assert series.warnings[0] == "ignored 2 replies or other messages without a patch"


def test_a_reply_alone_is_no_series() -> None:
    with pytest.raises(UserError, match="no patches among 1 messages"):
        _series("lkml/2019-10-linux-scsi-Antw-reply.eml")


@pytest.mark.parametrize(
    "path",
    [
        "patchwork/series-bugs-unnumbered.mbox",  # "This is an orphaned patch!" to the cover
        "derived/unnumbered-fixup-reply.mbox",  # "[PATCH] ..." with a diff, to patch 1
        "derived/antw-reply-quoting-whole-patch.mbox",
    ],
)
def test_a_reply_carrying_or_quoting_a_diff_never_replaces_the_incomplete_series(
    path: str,
) -> None:
    series = _series(path)
    assert (series.total, series.missing) == (2, [2])
    with pytest.raises(UserError, match=r"missing patch 2 of 2"):
        series.check_complete(allow_incomplete=False)


def test_a_patch_subject_follow_up_without_a_diff_is_a_reply() -> None:
    series = _series("b4/trailers-followup-nore.mbox")
    assert [p.mail.message_id for p in series.patches] == ["<orig-message@example.com>"]
    assert series.duplicates == []


def test_a_cover_naming_a_version_its_patches_lack_gives_the_version_and_a_warning() -> None:
    series = _series("patchwork/series-base-different-versions.mbox")
    assert (series.version, series.total) == (3, 4)
    assert series.title == "net: dsa: Multi-CPU ground work (v3)"
    assert any("taking v3 from the cover" in w for w in series.warnings)


def test_two_sendings_of_one_version_are_named_and_the_later_threaded_one_wins() -> None:
    series = _series("patchwork/series-revision-unlabeled.mbox")
    assert series.cover is not None
    assert (
        series.cover.message_id == "<1473633201-10585-1-git-send-email-stephenfinucane@gmail.com>"
    )
    assert series.warnings[-1] == (
        "series-revision-unlabeled.mbox also holds v1 (2 of 2) "
        "<1473632524-8585-1-git-send-email-stephenfinucane@gmail.com> of "
        "Sun, 11 Sep 2016 23:22:02 +0100; using v1 (2 of 2) "
        "<1473633201-10585-1-git-send-email-stephenfinucane@gmail.com> of "
        "Sun, 11 Sep 2016 23:33:19 +0100, threaded to its cover and the latest"
    )


def test_sendings_without_any_threading_are_told_apart_by_date() -> None:
    series = _series("patchwork/series-revision-unlabeled-noreferences.mbox")
    assert [p.mail.date for p in series.patches] == [
        "Tue, 23 May 2017 14:21:05 +0800",
        "Tue, 23 May 2017 14:29:39 +0800",
    ]


def test_a_resend_re_encoded_with_crlf_is_the_same_patch_by_patch_id() -> None:
    series = _series("derived/crlf-resend.mbox")
    assert series.duplicates == []
    assert "patch 1 appears 2 times with the same diff" in series.warnings
    series.check_complete(allow_incomplete=False)


def test_a_git_pull_carrying_the_whole_diff_is_refused_with_a_hint() -> None:
    with pytest.raises(UserError) as refused:
        _series("patchwork/0003-git-pull-request-with-diff.mbox")
    assert "is a pull request, not a patch series" in refused.value.message
    assert refused.value.hint and "git fetch URL BRANCH" in refused.value.hint


@pytest.mark.parametrize(
    ("path", "subject"),
    [
        ("patchwork/0007-cvs-format-diff.mbox", "Fix ld pr11138 FAILures on mips*."),
        ("lkml/2001-08-lkml-Patch-colon.eml", "incorrect e2fsprog data from ver_linux script"),
        ("lkml/2002-12-linux-mips-PATCH-colon.eml", "minor code cleanup"),
    ],
)
def test_a_colon_after_the_patch_prefix_is_not_part_of_the_subject(path: str, subject: str) -> None:
    assert _series(path).patches[0].subject == subject
