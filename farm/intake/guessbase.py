# SPDX-License-Identifier: Apache-2.0
"""A base for a series that names none: the commit whose files are those the patches
were written against, found from the ``index <old>..<new>`` lines of their diffs.

``b4 am --guess-base`` does the same; b4's is not a library call (it lives inside its
command-line code and needs its configuration), so this is the same idea in a few git
calls: the files the series changes first, their blob ids before the change, and the
newest commit among the tree's HEAD and the commits touching those files in which every
one of them has that blob.
"""

from __future__ import annotations

import re
from pathlib import Path

from farm.git import git
from farm.intake.series import PatchMail

_INDEX = re.compile(
    r"^diff --git a/(\S+) b/\S+\n(?:(?!diff --git)[^\n]*\n)*?index ([0-9a-f]{7,64})\.\.",
    re.MULTILINE,
)
_NEW_FILE = re.compile(r"^0+$")


def preimages(patches: list[PatchMail]) -> dict[str, str]:
    """Path -> abbreviated blob id before the series, for each file it changes first."""
    blobs: dict[str, str] = {}
    for patch in patches:
        for path, blob in _INDEX.findall(patch.diff):
            if path not in blobs:
                blobs[path] = blob
    return {path: blob for path, blob in blobs.items() if not _NEW_FILE.match(blob)}


def guess_base(repo: Path, patches: list[PatchMail], candidates: int = 500) -> str | None:
    """The newest commit holding every preimage blob, or None (nothing to go on, or no
    commit among HEAD and the last ``candidates`` commits touching those files)."""
    blobs = preimages(patches)
    if not blobs:
        return None
    paths = sorted(blobs)
    log = git(repo, "log", "--all", "--format=%H", f"-n{candidates}", "--", *paths, check=False)
    head = git(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False).split()
    for commit in dict.fromkeys([*head, *log.split()]):
        if _holds(repo, commit, blobs, paths):
            return commit
    return None


def _holds(repo: Path, commit: str, blobs: dict[str, str], paths: list[str]) -> bool:
    listing = git(repo, "ls-tree", "-r", "--full-tree", commit, "--", *paths, check=False)
    found = {}
    for line in listing.splitlines():
        meta, _, path = line.partition("\t")
        found[path] = meta.split()[2]
    return all(found.get(path, "").startswith(blob) for path, blob in blobs.items())
