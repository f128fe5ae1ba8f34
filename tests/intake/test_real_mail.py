# SPDX-License-Identifier: Apache-2.0
"""Intake on real mail from other projects (patchwork's and b4's test mail, list
archives), each file's answer written down before farm read it (tests/fixtures/mail)."""

from __future__ import annotations

import re

import pytest

from farm.intake.mbox import read_mails
from farm.intake.series import group_series

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
