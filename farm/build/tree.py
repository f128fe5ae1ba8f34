# SPDX-License-Identifier: Apache-2.0
"""The kernel tree for tests and the demo: Debian's linux-source 6.1 as a git repository.

The tarball is unpacked and committed once, then cached. The commit is deterministic
(fixed identity and dates), so every machine gets the same base commit id and build
artefacts keyed by commit mean the same thing everywhere. The repository is built in a
temporary directory and renamed into place, so a kill never leaves a half tree, and a
lock file makes concurrent callers wait for the first one instead of racing it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from farm.errors import InfraError
from farm.git import git, is_git_repo

TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
TREE_NAME = "linux-source-6.1"
# Fixed identity and dates: the same tarball gives the same commit id on every machine.
_BASE_DATE = "2023-01-01T00:00:00+0000"
_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "farm",
    "GIT_AUTHOR_EMAIL": "farm@localhost",
    "GIT_COMMITTER_NAME": "farm",
    "GIT_COMMITTER_EMAIL": "farm@localhost",
    "GIT_AUTHOR_DATE": _BASE_DATE,
    "GIT_COMMITTER_DATE": _BASE_DATE,
}
BASE_TAG = "linux-source-6.1"

Progress = Callable[[str], None]


def farm_cache_dir() -> Path:
    """``$FARM_CACHE_DIR``, else ``$XDG_CACHE_HOME/farm`` (``~/.cache/farm``)."""
    explicit = os.environ.get("FARM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "farm"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock on ``path``, held for the ``with`` block (blocking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_linux_tree(cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """The cached linux-source-6.1 git repository, created on first use (a few minutes)."""
    cache = cache_dir or farm_cache_dir()
    tree = cache / TREE_NAME
    say = progress or (lambda _msg: None)
    if is_git_repo(tree):
        return tree
    with file_lock(cache / f"{TREE_NAME}.lock"):
        if is_git_repo(tree):  # another caller finished while we waited
            return tree
        if not TARBALL.is_file():
            raise InfraError(
                f"{TARBALL} is missing: the kernel tree for tests and the demo comes from it",
                hint="apt-get install linux-source",
            )
        if tree.exists():  # not a repository: a leftover we may replace
            shutil.rmtree(tree)
        with tempfile.TemporaryDirectory(prefix=f".{TREE_NAME}.", dir=cache) as tmp:
            staging = _unpack_and_commit(Path(tmp), say)
            staging.rename(tree)
        say(f"kernel tree ready: {tree} at {base_commit(tree)[:12]}")
    return tree


def base_commit(tree: Path) -> str:
    return git(tree, "rev-parse", f"{BASE_TAG}^{{commit}}").strip()


def _unpack_and_commit(tmp: Path, say: Progress) -> Path:
    say(f"unpacking {TARBALL} (one time, a few minutes)")
    try:
        subprocess.run(
            ["tar", "-xJf", str(TARBALL), "-C", str(tmp), "--no-same-owner"],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        error = exc.stderr.decode("utf-8", "replace").strip()
        raise InfraError(
            f"cannot unpack {TARBALL}: {error}", hint="df -h; apt-get install xz-utils"
        ) from exc
    staging = tmp / TREE_NAME
    say("committing the tree into git")
    git(staging, "init", "-q", "-b", "master")
    # The tarball's own .gitignore files would hide some sources from `git add`.
    git(staging, "add", "-A", "-f", ".", timeout=1800)
    git(staging, "commit", "-q", "--no-verify", "-m", "Debian linux-source 6.1", env=_COMMIT_ENV)
    git(staging, "tag", BASE_TAG)
    return staging


def commit_edit(tree: Path, path: str, text: str, message: str, parent: str = BASE_TAG) -> str:
    """A commit on ``parent`` that appends ``text`` to one file, made with git plumbing
    (a private index, no checkout), so no branch or working file of ``tree`` changes.
    The tests and benchmarks use it as a stand-in for "one more patch"."""
    with tempfile.TemporaryDirectory(prefix="farm-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(tree, "read-tree", parent, env=env)
        old = git(tree, "show", f"{parent}:{path}")
        blob = git(tree, "hash-object", "-w", "--stdin", input=(old + text).encode()).strip()
        git(tree, "update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
        written = git(tree, "write-tree", env=env).strip()
    return git(tree, "commit-tree", written, "-p", parent, "-m", message, env=_COMMIT_ENV).strip()
