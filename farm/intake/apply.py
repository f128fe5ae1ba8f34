# SPDX-License-Identifier: Apache-2.0
"""Applying patches with ``git am -3`` in a worktree that farm owns.

The user's checkout (HEAD, index, files) is never touched: every patch goes into a
separate worktree on a farm branch. The mail git am reads is rebuilt from the cleaned
headers, so a subject with an embedded newline cannot smuggle a trailer into a commit.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, parseaddr
from pathlib import Path

from farm.errors import UserError
from farm.git import GitError, git
from farm.intake.series import PatchMail

# Hooks and signing belong to the user's own workflow, not to a farm worktree.
_AM = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "am", "--quiet")
_PATCH_FAILED = re.compile(
    r"^error: (?:patch failed: (.+):\d+|(.+): does not (?:exist|match)"
    r"|sha1 information is lacking or useless \((.+)\))"
)


@dataclass(frozen=True)
class Worktree:
    """A farm-owned worktree of ``repo`` at ``path``, on branch ``branch``."""

    repo: Path
    path: Path
    branch: str

    def remove(self) -> None:
        """Remove the worktree and its branch; safe to call on a half-made one."""
        git(self.repo, "worktree", "remove", "--force", str(self.path), check=False)
        shutil.rmtree(self.path, ignore_errors=True)
        git(self.repo, "worktree", "prune", check=False)
        git(self.repo, "branch", "-D", self.branch, check=False)

    def rename(self, path: Path, branch: str) -> Worktree:
        """Move to the final name once the database has handed out the ids."""
        final = Worktree(self.repo, path, branch)
        if path.exists() or git(self.repo, "branch", "--list", branch).strip():
            final.remove()  # left by a killed run whose database transaction rolled back
        git(self.repo, "branch", "-M", self.branch, branch)
        git(self.repo, "worktree", "move", str(self.path), str(path))
        return final

    def exists(self) -> bool:
        return (self.path / ".git").exists() and bool(
            git(self.repo, "branch", "--list", self.branch).strip()
        )


def apply_patches(worktree: Worktree, base: str, patches: list[PatchMail]) -> dict[int, str]:
    """Create ``worktree`` at ``base`` and apply ``patches``; {index: commit sha}.

    If a patch does not apply, nothing is left behind: the worktree and its branch are
    removed and a UserError names the patch and the conflicting files.
    """
    worktree.path.parent.mkdir(parents=True, exist_ok=True)
    path, branch = str(worktree.path), worktree.branch
    git(worktree.repo, "worktree", "add", "--quiet", "-b", branch, path, base)
    try:
        with tempfile.TemporaryDirectory(prefix="farm-am-") as scratch:
            files = []
            for n, patch in enumerate(patches, 1):
                file = Path(scratch) / f"{n:04d}.eml"
                file.write_bytes(am_message(patch))
                files.append(str(file))
            _run_am(worktree, base, patches, files)
        shas = git(worktree.path, "rev-list", "--reverse", f"{base}..HEAD").split()
        if len(shas) != len(patches):
            raise UserError(f"git am made {len(shas)} commits from {len(patches)} patches")
    except BaseException:
        worktree.remove()
        raise
    return {patch.index: sha for patch, sha in zip(patches, shas, strict=True)}


def _run_am(worktree: Worktree, base: str, patches: list[PatchMail], files: list[str]) -> None:
    try:
        git(worktree.path, *_AM, "-3", "--keep", "--message-id", *files)
    except GitError as exc:
        done = int(git(worktree.path, "rev-list", "--count", f"{base}..HEAD").strip() or 0)
        failed = patches[min(done, len(patches) - 1)]
        conflicts = git(worktree.path, "diff", "--name-only", "--diff-filter=U").split()
        for line in exc.stderr.splitlines():
            if match := _PATCH_FAILED.match(line):
                conflicts.append(next(group for group in match.groups() if group))
        git(worktree.path, "am", "--abort", check=False)
        raise _am_failure(failed, base, list(dict.fromkeys(conflicts)), exc.stderr) from exc


def _am_failure(patch: PatchMail, base: str, conflicts: list[str], stderr: str) -> UserError:
    """Conflicts with the base, or a patch git could not read: git's own words either way."""
    said = [line for line in stderr.splitlines() if line.startswith(("error:", "fatal:"))]
    quoted = "".join(f"\n  git am: {line}" for line in dict.fromkeys(said[:4]))
    which = f"patch {patch.index}/{patch.info.total or 1} {patch.subject!r}"
    if conflicts:
        return UserError(
            f"{which} does not apply on {base[:12]}: conflicts in {', '.join(conflicts)}" + quoted,
            hint="pass the --base the series was written for, or --patches to skip it",
        )
    return UserError(
        f"git am could not apply {which} on {base[:12]}" + (quoted or f": {stderr[-500:]}"),
        hint="farm submit --dry-run checks the mail; fetch it again (b4 am <message-id>)",
    )


def am_message(patch: PatchMail) -> bytes:
    """The mail git am reads: cleaned, re-encoded headers and the original body bytes."""
    mail = patch.mail
    name, addr = parseaddr(mail.author)
    lines = [
        f"From: {formataddr((name, addr), charset='utf-8')}",
        f"Subject: {Header(patch.subject, 'utf-8', header_name='Subject').encode()}",
    ]
    if mail.date and mail.date.isascii():
        lines.append(f"Date: {mail.date}")
    if mail.message_id:
        lines.append(f"Message-ID: {mail.message_id}")
    lines += mail.mime_headers
    header = "\n".join(lines) + "\n\n"
    return header.encode("utf-8", "surrogateescape") + mail.raw_body


def patch_ids(repo: Path, patches: list[PatchMail]) -> dict[int, str]:
    """``git patch-id --stable`` of each patch with a diff, in one git call."""
    stream = "".join(f"commit {p.index:040x}\n{p.diff}\n" for p in patches if p.diff)
    ids = {}
    for line in git(repo, "patch-id", "--stable", input=stream.encode()).splitlines():
        patch_id, fake_commit = line.split()
        ids[int(fake_commit, 16)] = patch_id
    return ids
