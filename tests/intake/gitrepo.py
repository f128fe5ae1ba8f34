# SPDX-License-Identifier: Apache-2.0
"""A small kernel-like git repository built the same way every time.

Fixed identities and dates make every commit id reproducible, so the committed mbox
fixtures (made from this repository by tests/fixtures/intake/generate.py) name a
``base-commit:`` that exists in the repository each test builds afresh.
"""

from __future__ import annotations

from pathlib import Path

from farm.git import git

AUTHORS = {
    "ada": ("Ada Lovelace", "ada@example.org"),
    "juergen": ("Jürgen Groß", "jgross@example.com"),
}
FILES = {
    "mm/huge_memory.c": [f"int huge_{n}(void) {{ return {n}; }}" for n in range(1, 40)],
    "mm/vmscan.c": [f"static int scan_{n} = {n};" for n in range(1, 40)],
    "lib/list_debug.c": [f"/* list check {n} */" for n in range(1, 40)],
}
# (author, file, line number, new text, subject) of each patch of the series.
SERIES = [
    ("ada", "mm/huge_memory.c", 3, "int huge_3(void) { return 33; }", "mm/thp: return 33"),
    ("juergen", "mm/vmscan.c", 5, "static int scan_5 = 55;", "mm/vmscan: scan more"),
    ("ada", "lib/list_debug.c", 7, "/* list check seven */", "lib: spell out seven"),
    ("ada", "mm/huge_memory.c", 20, "int huge_20(void) { return 0; }", "mm/thp: zero 20"),
    ("juergen", "mm/vmscan.c", 30, "static int scan_30 = 3;", "mm/vmscan: fewer at 30"),
]


def commit(repo: Path, message: str, who: str = "ada", tick: int = 0) -> str:
    name, email = AUTHORS[who]
    date = f"{1700000000 + tick * 60} +0000"
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
    }
    git(repo, "commit", "--quiet", "--no-verify", "-a", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD").strip()


def edit(repo: Path, path: str, line: int, text: str) -> None:
    file = repo / path
    lines = file.read_text().splitlines()
    lines[line - 1] = text
    file.write_text("\n".join(lines) + "\n")


def make_repo(repo: Path, subjects: list[str] | None = None) -> tuple[str, str]:
    """The base commit on ``master`` and the series on branch ``series``: (base, head)."""
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=master")
    git(repo, "config", "commit.gpgSign", "false")
    for path, lines in FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("\n".join(lines) + "\n")
    git(repo, "add", ".")
    base = commit(repo, "Linux 6.15-rc5")
    git(repo, "checkout", "--quiet", "-b", "series")
    for n, (who, path, line, text, subject) in enumerate(SERIES, 1):
        edit(repo, path, line, text)
        title = subjects[n - 1] if subjects else subject
        commit(repo, f"{title}\n\nExplain patch {n}.\n\nSigned-off-by: {AUTHORS[who][0]}", who, n)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "--quiet", "master")
    return base, head


def format_patch(repo: Path, out: Path, *args: str) -> list[Path]:
    """Real ``git format-patch --cover-letter --thread --base`` of the series branch."""
    names = git(
        repo,
        "format-patch",
        "--cover-letter",
        "--thread",
        "--base=master",
        "-o",
        str(out),
        *args,
        "master..series",
    )
    return [Path(line) for line in names.split()]


def mbox(files: list[Path]) -> bytes:
    return b"".join(f.read_bytes() for f in files)
