# SPDX-License-Identifier: Apache-2.0
"""Hunk integrity: every hunk holds the lines its header counts, or intake says which not."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.git import git
from farm.intake.hunks import damage
from farm.intake.mbox import read_mails
from farm.intake.series import group_series

from .conftest import MBOXES


@pytest.mark.parametrize(
    "name", ["series-v2.mbox", "thread-with-replies.mbox", "hostile.mbox", "encoded-headers.mbox"]
)
def test_the_patches_of_real_mail_are_whole(name: str) -> None:
    patches = group_series(read_mails(MBOXES / name)).patches
    assert patches and [damage(p.diff) for p in patches] == [None] * len(patches)


def test_new_deleted_and_unterminated_files_are_whole(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "gone.c").write_text("a\nb\n")
    (repo / "tail.c").write_text("x\ny\n")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "base")
    (repo / "gone.c").unlink()
    (repo / "new.c").write_text("1\n2\n3\n")
    (repo / "tail.c").write_text("x\nz")  # "\ No newline at end of file"
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached")
    assert "\\ No newline at end of file" in diff and "@@ -0,0 +1,3 @@" in diff
    assert damage(diff) is None


def test_a_hunk_short_of_lines_or_with_one_too_many_is_named() -> None:
    hunk = "--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    assert damage(hunk) is None
    assert damage(hunk.replace(" c\n", "")) == (
        "f.c hunk @@ -1,3 +1,3 @@ has 2 old and 2 new lines, its header says 3 and 3"
    )
    assert damage(hunk.replace("-b\n", "-b\n-b2\n")) == (
        "f.c hunk @@ -1,3 +1,3 @@ has 4 old and 3 new lines, its header says 3 and 3"
    )
    cut_by_the_next_file = hunk.replace(" c\n", "diff --git a/g.c b/g.c\n")
    assert damage(cut_by_the_next_file) is not None
