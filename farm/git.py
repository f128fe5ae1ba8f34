# SPDX-License-Identifier: Apache-2.0
"""Running git: the one place that turns git's failures into farm errors.

Arguments are passed as a list, never through a shell, so nothing from an email can
become a command. ``GIT_*`` variables of the caller are dropped so that a test or a
hook environment cannot redirect farm to another repository.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from farm.errors import InfraError, UserError

_IDENTITY = {
    "GIT_AUTHOR_NAME": "farm",
    "GIT_AUTHOR_EMAIL": "farm@localhost",
    "GIT_COMMITTER_NAME": "farm",
    "GIT_COMMITTER_EMAIL": "farm@localhost",
}


class GitError(UserError):
    """A git command failed; carries its stderr for callers that can say more."""

    def __init__(self, message: str, *, stderr: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stderr = stderr


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **_IDENTITY})
    env.update(extra or {})
    return env


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``git -C repo args...`` and return stdout; a failure raises GitError."""
    cmd = ["git", "-C", str(repo), *args]
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=git_env(env),
            check=False,
        )
    except FileNotFoundError as exc:
        raise InfraError("git is not installed", hint="apt-get install git") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"git {args[0]} in {repo} took more than {timeout:.0f}s") from exc
    stdout = proc.stdout.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed in {repo}: {stderr}", stderr=stderr)
    return stdout


def is_git_repo(path: Path) -> bool:
    if not path.is_dir():
        return False
    return git(path, "rev-parse", "--git-dir", check=False).strip() != ""


def resolve(repo: Path, ref: str) -> str:
    """The full commit id of ``ref``, or a UserError naming it."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).strip()
    if not out:
        raise UserError(
            f"{ref!r} is not a commit in {repo}",
            hint=f"git -C {repo} fetch <remote> {ref}   # or pass --base REF",
        )
    return out
