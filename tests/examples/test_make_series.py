# SPDX-License-Identifier: Apache-2.0
"""The demo series generator: farm.demoseries (examples/make_series.py is its script) and
its recipes in examples/series/, package data found through farm.data.

The slow tests generate the real 28-patch series against Debian's linux-source 6.1 tree
(the ``linux_tree`` session fixture) and check it the way a maintainer's tools would:
mailbox parsing, threading, ``base-commit:``, and ``git am`` on a clone.
"""

from __future__ import annotations

import json
import mailbox
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from farm.data import demo_series_dir
from farm.demoseries import RECIPES, load_recipes
from farm.git import git

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "make_series.py"
GENERATOR = [sys.executable, "-m", "farm.demoseries"]
SUBJECT = re.compile(r"^\[PATCH RFC (\d\d)/28\] ")
Series = tuple[Path, dict[str, Any]]  # the mbox and the generator's --json output


def run_generator(
    tree: Path, out: Path, command: list[str] = GENERATOR
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, "--tree", str(tree), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    return path


@pytest.fixture(scope="module")
def series(linux_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Series:
    out = tmp_path_factory.mktemp("series") / "series.mbox"
    proc = run_generator(linux_tree, out)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_missing_anchor_names_the_recipe_file_and_code(tmp_path: Path) -> None:
    """A tree without the code a recipe edits fails before writing anything, and says
    which recipe, which file and which snippet."""
    tree = make_repo(tmp_path / "tree", {"mm/huge_memory.c": "/* a newer kernel */\n"})
    out = tmp_path / "series.mbox"
    proc = run_generator(tree, out)
    assert proc.returncode == 1
    assert "01-mm-huge-memory-comment-terminator.toml" in proc.stderr
    assert "'* example, s390 kvm.' is missing from mm/huge_memory.c" in proc.stderr
    assert "hint:" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", [GENERATOR, [sys.executable, str(SCRIPT)]])
def test_missing_file_is_named(tmp_path: Path, command: list[str]) -> None:
    """Both ways of running the generator: the module and the example script."""
    tree = make_repo(tmp_path / "tree", {"README": "not a kernel\n"})
    proc = run_generator(tree, tmp_path / "series.mbox", command)
    assert proc.returncode == 1
    assert "mm/huge_memory.c does not exist in this tree" in proc.stderr


def test_recipes_are_package_data() -> None:
    cover, recipes = load_recipes()
    assert RECIPES == demo_series_dir() == (ROOT / "examples" / "series").resolve()
    assert cover.subject and len(recipes) == 28


@pytest.mark.slow
def test_series_is_a_threaded_28_patch_rfc_on_the_trees_head(
    series: Series, linux_tree: Path
) -> None:
    path, result = series
    messages = list(mailbox.mbox(str(path)))
    assert len(messages) == 29
    cover, patches = messages[0], messages[1:]
    assert cover["Subject"].startswith("[PATCH RFC 00/28] ")
    numbers = [SUBJECT.match(m["Subject"].replace("\n", "")) for m in patches]
    assert [match.group(1) if match else None for match in numbers] == [
        f"{n:02d}" for n in range(1, 29)
    ]
    ids = [m["Message-ID"] for m in messages]
    assert ids == result["message_ids"]
    assert ids[0] == "<20261126.0.farm-demo@example.org>"
    assert len(set(ids)) == 29
    assert all(m["In-Reply-To"] == ids[0] and m["References"] == ids[0] for m in patches)
    assert cover["In-Reply-To"] is None
    head = git(linux_tree, "rev-parse", "HEAD").strip()
    assert f"base-commit: {head}" in cover.get_payload()
    assert result["base_commit"] == head


@pytest.mark.slow
def test_patch_07_brings_both_bugs(series: Series) -> None:
    """07/28 is the culprit of the demo: the NR_ANON_THPS accounting that free
    leaves behind, and the fall-through that list_move()s a deleted entry."""
    path, _ = series
    patch07 = list(mailbox.mbox(str(path)))[7]
    assert "07/28" in patch07["Subject"]
    diff = patch07.get_payload()
    assert "+		__mod_lruvec_page_state(page, NR_ANON_THPS, thp_nr_pages(page));" in diff
    assert "+		if (!page_mapcount(page))" in diff
    assert "free_transhuge_page" not in diff


@pytest.mark.slow
def test_all_patches_apply_with_git_am_in_order(
    series: Series, linux_tree: Path, tmp_path: Path
) -> None:
    path, result = series
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--shared", str(linux_tree), str(clone))
    # The cover letter has no diff: git am stops on it, and a maintainer skips it.
    git(clone, "am", "-q", str(path), check=False)
    git(clone, "am", "--skip")
    log = git(clone, "log", "--format=%s", f"{result['base_commit']}..HEAD").splitlines()
    assert len(log) == 28
    assert log[::-1] == [s.split("] ", 1)[1] for s in result["subjects"]]


@pytest.mark.slow
def test_same_tree_gives_the_same_bytes(series: Series, linux_tree: Path, tmp_path: Path) -> None:
    path, _ = series
    again = tmp_path / "again.mbox"
    assert run_generator(linux_tree, again).returncode == 0
    assert again.read_bytes() == path.read_bytes()
