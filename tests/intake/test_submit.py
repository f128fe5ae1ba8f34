# SPDX-License-Identifier: Apache-2.0
"""farm submit: dry runs, applying in a farm worktree, failing cleanly, reusing."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest
from dbfixtures import NewDatabase
from sqlalchemy import func, select
from together import together

from farm.config import FarmConfig, load_config
from farm.errors import UserError
from farm.git import git
from farm.intake.apply import Worktree, apply_patches
from farm.intake.mbox import read_mails
from farm.intake.series import group_series
from farm.scheduler.submit import intake
from farm.store import Store
from farm.store.series import Application, Patch, Series

from .conftest import MBOXES, Outcome, Upstream
from .gitrepo import commit, edit

Farm = Callable[..., Outcome]


@pytest.fixture
def database_url() -> None:
    """Applying series is git work: these tests run on SQLite only, for CI time. The
    races of two submits, where the database decides, run on both engines
    (new_database)."""
    return None


def checkout_state(repo: Path) -> tuple[str, str, str]:
    """What the developer sees: HEAD, the status and the bytes of a file."""
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    return git(repo, "rev-parse", "HEAD"), status, (repo / "mm/vmscan.c").read_text()


def count(store: Store, table: type) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_dry_run_json_has_exactly_the_documented_shape(farm: Farm, farm_toml: Path) -> None:
    result = farm("submit", "--dry-run", "--json", str(MBOXES / "thread-with-replies.mbox"))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert list(data) == ["series", "patches", "missing", "warnings", "plan"]
    assert data["series"] == {
        "title": "mm: fix deferred split accounting",
        "version": 2,
        "total": 5,
        "base_commit": "6a3b1d5a2f0504c23e7652c3bc56653aef14b12d",
        "cover_message_id": data["series"]["cover_message_id"],
    }
    assert data["series"]["cover_message_id"].startswith("<cover.")
    assert data["patches"][1] == {
        "index": 2,
        "subject": "mm/vmscan: scan more",
        "message_id": data["patches"][1]["message_id"],
        "author": "Jürgen Groß <jgross@example.com>",
        "trailers": [],
    }
    assert data["patches"][2]["trailers"] == ["Reviewed-by: Rev Iewer <reviewer@example.net>"]
    assert all(
        p["message_id"].startswith("<") and p["message_id"].endswith(">") for p in data["patches"]
    )
    assert data["missing"] == []
    assert not (farm_toml.parent / "data").exists(), "a dry run creates no database"


def test_dry_run_with_a_gap_exits_1_naming_the_missing_patches(farm: Farm) -> None:
    result = farm("submit", "--dry-run", "--json", str(MBOXES / "gap.mbox"))
    assert result.code == 1
    assert "missing patch 3, 5 of 5" in result.err
    assert result.out == ""


def farm_capped(*args: str, megabytes: int = 1024) -> subprocess.CompletedProcess[str]:
    """``farm ARGS`` in a child whose address space is capped, so that a regression fails
    this test quickly instead of eating the machine."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    return subprocess.run(
        [sys.executable, "-m", "farm", *args],
        preexec_fn=cap, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_one_subject_line_cannot_exhaust_memory(farm_toml: Path, tmp_path: Path) -> None:
    patch = read_mails(MBOXES / "series-v2.mbox")[1].raw
    huge = tmp_path / "huge.patch"
    huge.write_bytes(patch.replace(b"[PATCH v2 1/5]", b"[PATCH 1/100000000]"))
    result = farm_capped("submit", "--dry-run", str(huge))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("farm: error: huge.patch: subject '[PATCH 1/100000000] mm/")
    assert "farm reads at most 999 patches" in result.stderr
    assert len(result.stderr) < 500


@pytest.mark.parametrize("selection", [("--upto", "100000000"), ("--patches", "1-100000000")])
def test_a_huge_selection_is_refused_at_once(farm_toml: Path, selection: tuple[str, str]) -> None:
    result = farm_capped("submit", "--dry-run", *selection, str(MBOXES / "series-v2.mbox"))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "100000000" in result.stderr and len(result.stderr) < 500


def test_the_patch_limit_is_a_setting(farm: Farm, farm_toml: Path) -> None:
    farm_toml.write_text(farm_toml.read_text() + "[intake]\nmax_patches = 4\n")
    result = farm("submit", "--dry-run", str(MBOXES / "series-v2.mbox"))
    assert result.code == 1
    assert "farm reads at most 4 patches" in result.err


def test_dry_run_touches_no_git_tree(farm: Farm, tree: Path) -> None:
    refs = git(tree, "for-each-ref")
    result = farm("submit", "--dry-run", "--tree", str(tree), str(MBOXES / "series-v2.mbox"))
    assert result.code == 0
    assert "next: without --dry-run, farm applies 5 patches" in result.out
    assert git(tree, "for-each-ref") == refs
    assert git(tree, "worktree", "list").count("\n") == 1


def test_submit_applies_one_commit_per_patch_beside_the_users_checkout(
    farm: Farm, tree: Path, config: FarmConfig, store: Store
) -> None:
    (tree / "mm/vmscan.c").write_text("work in progress\n")  # the developer's own edits
    git(tree, "add", "mm/vmscan.c")
    before = checkout_state(tree)
    result = farm("submit", "--json", "--tree", str(tree), str(MBOXES / "series-v2.mbox"))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert checkout_state(tree) == before
    worktree = Path(data["worktree"])
    assert worktree.parent == config.data_dir / "worktrees"
    # namespaced by the database, so farms sharing one tree never collide
    assert re.fullmatch(
        rf"farm/[0-9a-f]{{8}}/series-{data['series_id']}-v2-a{data['application_id']}",
        data["branch"],
    )
    log = git(worktree, "log", "--format=%s%x00%an%x00%(trailers:key=Message-Id,valueonly)", "-5")
    subjects, authors, ids = zip(
        *(line.split("\0") for line in log.strip().split("\n\n")), strict=True
    )
    assert subjects[::-1] == tuple(p["subject"] for p in data["patches"])
    assert authors[-2] == "Jürgen Groß"
    assert ids[::-1] == tuple(p["message_id"] for p in data["patches"])
    assert git(worktree, "rev-parse", "HEAD").strip() == data["commits"]["5"]
    assert data["base"] == "6a3b1d5a2f0504c23e7652c3bc56653aef14b12d"
    assert data["next"]["hosts"] == ["laptop", "workstation"]


def test_stored_patches_carry_mail_headers_and_the_patch_id_of_their_commit(
    config: FarmConfig, store: Store, tree: Path
) -> None:
    result = intake(config, store, MBOXES / "series-v2.mbox", tree=tree, upto=3)
    assert result.selected == [1, 2, 3] and sorted(result.commits) == [1, 2, 3]
    with store.session() as session:
        patches = session.scalars(select(Patch).order_by(Patch.index)).all()
        assert len(patches) == 5, "the whole series is stored, the selection applied"
        second = patches[1]
        assert second.message_id and second.in_reply_to and second.references
        assert second.cc == ["Andrew Morton <akpm@linux-foundation.org>"]
        assert second.files == ["mm/vmscan.c"]
        assert b"Subject: [PATCH v2 2/5] mm/vmscan: scan more" in second.raw
        shown = git(tree, "show", result.commits[2])
        from_git = git(tree, "patch-id", "--stable", input=shown.encode()).split()[0]
        assert second.patch_id == from_git


def test_submitting_the_same_mbox_twice_reuses_series_and_branch(
    farm: Farm, tree: Path, store: Store
) -> None:
    first = json.loads(
        farm("submit", "--json", "--tree", str(tree), str(MBOXES / "series-v2.mbox")).out
    )
    again = farm("submit", "--tree", str(tree), str(MBOXES / "thread-with-replies.mbox"))
    assert again.code == 0
    assert f"submitted before as series {first['series_id']}" in again.err
    assert "reused 5 patches" in again.out
    assert count(store, Series) == 1 and count(store, Application) == 1
    fewer = farm("submit", "--tree", str(tree), "--upto", "2", str(MBOXES / "series-v2.mbox"))
    assert "applied 2 patches" in fewer.out, "another selection is another application"
    assert count(store, Series) == 1 and count(store, Application) == 2


def test_a_conflict_names_patch_and_file_and_leaves_nothing_behind(
    farm: Farm, tree: Path, store: Store, config: FarmConfig
) -> None:
    edit(tree, "lib/list_debug.c", 7, "/* list check 7, rewritten upstream */")
    commit(tree, "lib: upstream rewrote check 7", tick=99)
    branches = git(tree, "branch", "--list")
    result = farm("submit", "--tree", str(tree), "--base", "HEAD", str(MBOXES / "series-v2.mbox"))
    assert result.code == 1
    assert "patch 3/5 'lib: spell out seven' does not apply" in result.err
    assert "conflicts in lib/list_debug.c" in result.err
    assert "git am: error: Failed to merge in the changes." in result.err
    assert git(tree, "branch", "--list") == branches
    assert git(tree, "worktree", "list").count("\n") == 1
    assert not any((config.data_dir / "worktrees").iterdir())
    assert count(store, Series) == 0 and count(store, Patch) == 0


def test_hostile_subjects_are_data_for_git_and_never_reach_a_shell(
    farm: Farm, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where `touch pwned` would land
    result = farm("submit", "--json", "--tree", str(tree), str(MBOXES / "hostile.mbox"))
    assert result.code == 0, result.err
    worktree = Path(json.loads(result.out)["worktree"])
    subjects = git(worktree, "log", "--reverse", "--format=%s", "-5").splitlines()
    assert subjects[:3] == [
        "$(reboot); rm -rf /",
        "`touch pwned` && echo 'x\"y'",
        "lib: innocent Signed-off-by: Mallory <m@evil>",
    ]
    trailers = git(worktree, "log", "--format=%(trailers:key=Signed-off-by,valueonly)", "-5")
    assert "Mallory" not in trailers
    assert not (tmp_path / "pwned").exists()


def test_base_comes_from_the_option_the_series_or_the_config(
    config: FarmConfig, store: Store, tree: Path, upstream: Upstream, tmp_path: Path
) -> None:
    stripped = tmp_path / "no-base.mbox"
    stripped.write_bytes(
        (MBOXES / "series-v2.mbox").read_bytes().replace(b"base-commit:", b"base:")
    )
    with pytest.raises(UserError, match="names no base-commit") as error:
        intake(config, store, stripped, tree=tree)
    assert "--base" in str(error.value)
    result = intake(config, store, stripped, tree=tree, base="master")
    assert result.base == upstream.base


def test_an_unknown_base_says_how_to_get_it(config: FarmConfig, store: Store, tree: Path) -> None:
    with pytest.raises(UserError, match=r"'v9\.9' is not a commit") as error:
        intake(config, store, MBOXES / "series-v2.mbox", tree=tree, base="v9.9")
    assert "git -C" in str(error.value) and "fetch" in str(error.value)


def test_without_any_tree_the_error_says_what_to_pass(farm: Farm) -> None:
    result = farm("submit", str(MBOXES / "series-v2.mbox"))
    assert result.code == 1
    assert "no kernel tree" in result.err and "--tree" in result.err


def test_the_first_configured_tree_is_the_default(
    farm: Farm, farm_toml: Path, tree: Path, store: Store
) -> None:
    farm_toml.write_text(farm_toml.read_text() + f'[[trees]]\nname = "mm"\npath = "{tree}"\n')
    result = farm("submit", "--json", "--upto", "2", str(MBOXES / "series-v2.mbox"))
    assert result.code == 0, result.err
    assert json.loads(result.out)["tree"] == str(tree)


def test_soak_options_are_checked_before_any_work(farm: Farm, tree: Path) -> None:
    args = ("submit", "--tree", str(tree), str(MBOXES / "series-v2.mbox"))
    assert "cannot read duration '12 hours'" in farm(*args, "--soak", "12 hours").err
    assert "no host named 'pi'" in farm(*args, "--hosts", "laptop,pi").err
    assert git(tree, "worktree", "list").count("\n") == 1


def test_series_list_and_show(farm: Farm, tree: Path) -> None:
    farm("submit", "--tree", str(tree), "--patches", "1-2,4", str(MBOXES / "series-v2.mbox"))
    listed = json.loads(farm("series", "list", "--json").out)
    assert [(s["id"], s["version"], s["applications"]) for s in listed] == [(1, 2, 1)]
    shown = json.loads(farm("series", "show", "1", "--json").out)
    assert len(shown["patches"]) == 5
    assert sorted(shown["applications"][0]["commits"]) == ["1", "2", "4"]
    text = farm("series", "show", "1").out
    assert "mm/vmscan: scan more" in text and "/series-1-v2-a1" in text
    missing = farm("series", "show", "42")
    assert missing.code == 1 and "farm series list" in missing.err


def test_a_series_made_just_now_by_format_patch_applies(
    config: FarmConfig, store: Store, tree: Path, fresh_series: Path, upstream: Upstream
) -> None:
    result = intake(config, store, fresh_series, tree=tree)
    assert result.base == upstream.base
    assert result.series.title == "mm/thp: return 33", "an unedited cover names no title"
    final = result.commits[5]
    assert git(tree, "diff", final, upstream.head) == "", "same tree as the author's branch"
    shutil.rmtree(fresh_series)


def test_a_patch_sent_as_a_base64_attachment_applies(
    config: FarmConfig, store: Store, tree: Path, tmp_path: Path
) -> None:
    patch = group_series(read_mails(MBOXES / "series-v2.mbox")).patches[0]
    message = MIMEMultipart()
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["Subject"] = "[PATCH] mm/thp: return 33, as an attachment"
    message["Message-ID"] = "<attached@example.org>"
    message.attach(MIMEText("Sent by a mail client that attaches.\n", "plain", "utf-8"))
    message.attach(MIMEText(patch.diff, "x-patch", "utf-8"))  # utf-8 means base64
    (tmp_path / "attached.eml").write_bytes(message.as_bytes())
    result = intake(config, store, tmp_path / "attached.eml", tree=tree, base="master")
    shown = git(tree, "show", "--format=%s%n%b", result.commits[1])
    assert shown.startswith("mm/thp: return 33, as an attachment\n")
    assert "Message-Id: <attached@example.org>" in shown
    assert "+int huge_3(void) { return 33; }" in shown


def test_a_patch_whose_blobs_are_unknown_names_its_file(
    config: FarmConfig, store: Store, tree: Path, tmp_path: Path
) -> None:
    edit(tree, "lib/list_debug.c", 7, "/* list check 7, rewritten upstream */")
    commit(tree, "lib: upstream rewrote check 7", tick=99)
    text = (MBOXES / "series-v2.mbox").read_bytes()
    assert b"index 6941ee7.." in text, "patch 3 names the blob of lib/list_debug.c"
    (tmp_path / "unknown-blob.mbox").write_bytes(
        text.replace(b"index 6941ee7..", b"index 1234567..")
    )
    with pytest.raises(UserError, match=r"patch 3/5 .* conflicts in lib/list_debug\.c"):
        intake(config, store, tmp_path / "unknown-blob.mbox", tree=tree, base="HEAD")
    assert git(tree, "worktree", "list").count("\n") == 1


def submit_at_once(
    upstream: Upstream, home: Path, selections: list[list[str]], database_url: str
) -> tuple[Path, Store, list[dict[str, Any]]]:
    """`farm submit --json` of series-v2 in one process per selection, released at the
    same moment, on a fresh clone and a migrated database; their answers."""
    tree = home / "linux"
    git(home.parent, "clone", "--quiet", str(upstream.repo), str(tree))
    (home / "farm.toml").write_text(
        f'data_dir = "{home / "data"}"\ndatabase_url = "{database_url}"\n'
    )
    store = Store(database_url)  # migrated before the race
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env |= {"FARM_CONFIG": str(home / "farm.toml"), "FARM_BROKER_URL": "redis://127.0.0.1:1/0"}
    argv = ["submit", "--json", "--hosts", "laptop", "--tree", str(tree)]
    argvs = [[*argv, *chosen, str(MBOXES / "series-v2.mbox")] for chosen in selections]
    finished = together(
        "import os\nfrom farm.cli import main",
        f"main({argvs!r}[int(os.environ['TOGETHER_INDEX'])])",
        count=len(selections),
        workdir=home / "processes",
        env=env,
    )
    assert [f.stderr for f in finished if f.returncode] == []
    return tree, store, [json.loads(f.stdout) for f in finished]


def farm_branches(tree: Path) -> list[str]:
    return git(tree, "for-each-ref", "--format=%(refname:short)", "refs/heads/farm").split()


def test_one_series_submitted_twice_at_once_is_stored_once_with_one_worktree(
    upstream: Upstream, tmp_path: Path, new_database: NewDatabase
) -> None:
    """Two `farm submit` of one series at the same moment (a script run twice, two
    terminals): the first stores it, the second finds it stored and reuses its
    application, leaving no worktree or branch of its own behind. (Four rounds on
    SQLite, whose writers race for the file; one on PostgreSQL, where the unique
    content_hash decides.)"""
    for round_ in range(4 if new_database.engine == "sqlite" else 1):
        home = tmp_path / f"round-{round_}"
        tree, store, submitted = submit_at_once(upstream, home, [[], []], new_database(home, True))

        assert len({(s["series_id"], s["application_id"], s["branch"]) for s in submitted}) == 1
        assert sorted(s["reused"] for s in submitted) == [False, True]
        assert count(store, Series) == count(store, Application) == 1
        assert len(list((home / "data" / "worktrees").iterdir())) == 1
        assert farm_branches(tree) == [submitted[0]["branch"]]
        assert git(tree, "worktree", "list").count("\n") == 2  # the checkout and farm's
        store.dispose()


def test_two_selections_of_one_series_submitted_at_once_are_two_applications_of_it(
    upstream: Upstream, tmp_path: Path, new_database: NewDatabase
) -> None:
    for round_ in range(2 if new_database.engine == "sqlite" else 1):
        home = tmp_path / f"round-{round_}"
        url = new_database(home, True)
        tree, store, submitted = submit_at_once(upstream, home, [[], ["--upto", "2"]], url)

        assert len({s["series_id"] for s in submitted}) == 1
        assert [len(s["commits"]) for s in submitted] == [5, 2]
        assert count(store, Series) == 1
        assert count(store, Application) == 2
        assert sorted(farm_branches(tree)) == sorted(s["branch"] for s in submitted)
        store.dispose()


def test_a_crlf_mbox_keeps_its_base_commit_and_applies_on_it(
    farm_toml: Path, store: Store, tree: Path, fresh_series: Path, upstream: Upstream
) -> None:
    crlf = fresh_series.parent / "crlf.mbox"  # as a Windows mail client saves it
    files = sorted(fresh_series.iterdir())
    crlf.write_bytes(b"".join(f.read_bytes() for f in files).replace(b"\n", b"\r\n"))
    git(tree, "commit", "--quiet", "--allow-empty", "-m", "upstream moved on")
    farm_toml.write_text(
        farm_toml.read_text() + f'[[trees]]\nname = "mm"\npath = "{tree}"\nbase = "master"\n'
    )
    result = intake(load_config(farm_toml), store, crlf)
    assert result.series.base_commit == upstream.base
    assert result.base == upstream.base, "the series' base-commit:, not the tree's master"
    assert git(tree, "diff", result.commits[5], upstream.head) == ""
    assert "\r" not in git(tree, "log", "--format=%B", "-1", result.commits[5])


def truncated(tmp_path: Path) -> Path:
    """series-v2.mbox with one context line of patch 3's only hunk cut out."""
    text = (MBOXES / "series-v2.mbox").read_bytes()
    assert text.count(b"\n /* list check 9 */\n") == 1
    (tmp_path / "cut.mbox").write_bytes(text.replace(b"\n /* list check 9 */\n", b"\n", 1))
    return tmp_path / "cut.mbox"


def test_a_dry_run_refuses_a_hunk_shorter_than_its_header(farm: Farm, tmp_path: Path) -> None:
    result = farm("submit", "--dry-run", str(truncated(tmp_path)))
    assert result.code == 1
    assert (
        "patch 3/5 'lib: spell out seven' is damaged: lib/list_debug.c hunk @@ -4,7 +4,7 @@ "
        "has 6 old and 6 new lines, its header says 7 and 7" in result.err
    )
    assert "b4 am" in result.err


def test_a_failed_apply_quotes_git(
    config: FarmConfig, upstream: Upstream, tmp_path: Path, tree: Path
) -> None:
    patch = group_series(read_mails(truncated(tmp_path))).patches[2]  # past the dry run's check
    work = Worktree(tree, config.data_dir / "worktrees" / "cut", "farm/cut")
    with pytest.raises(UserError) as failed:
        apply_patches(work, upstream.base, [patch])
    message = str(failed.value)
    assert message.startswith("git am could not apply patch 3/5 'lib: spell out seven' on ")
    assert "git am: error: corrupt patch at line" in message
    assert "does not apply" not in message, "a corrupt patch is no conflict with the base"
    assert not work.path.exists()


def hostile_series(tree: Path, tmp_path: Path, name: str, paths: dict[str, str]) -> Path:
    """A real ``git format-patch`` series of two commits on a scratch branch of ``tree``
    (a symlink to a directory outside, then a file beside it), whose paths a hostile
    sender then rewrote by hand: ``paths`` maps the honest path to the hostile one."""
    scratch = tmp_path / f"{name}-scratch"
    git(tmp_path, "clone", "--quiet", str(tree), str(scratch))
    for key, value in (("user.email", "m@evil.example"), ("user.name", "Mallory")):
        git(scratch, "config", key, value)
    (scratch / "lib").mkdir(exist_ok=True)
    os.symlink(tmp_path / "outside", scratch / "lib" / "link")
    git(scratch, "add", "lib/link")
    git(scratch, "commit", "--quiet", "-m", "lib: add a link")
    (scratch / "lib" / "inside").mkdir()
    (scratch / "lib" / "inside" / "owned").write_text("owned\n")
    git(scratch, "add", "lib/inside/owned")
    git(scratch, "commit", "--quiet", "-m", "lib: add a file")
    out = tmp_path / f"{name}-patches"
    git(
        scratch,
        "format-patch",
        "--quiet",
        "--cover-letter",
        "--base=HEAD~2",
        "-o",
        str(out),
        "HEAD~2",
    )
    for patch in out.glob("*.patch"):
        text = patch.read_text()
        for honest, hostile in paths.items():
            text = text.replace(honest, hostile)
        patch.write_text(text)
    return out


@pytest.mark.parametrize(
    ("name", "paths", "says"),
    [
        ("traversal", {"lib/inside/owned": "../outside/owned"}, "invalid path '../outside/owned'"),
        ("through-a-symlink", {"lib/inside/owned": "lib/link/owned"}, "lib/link"),
    ],
)
def test_a_patch_writing_outside_the_tree_is_refused_and_nothing_is_written(
    config: FarmConfig,
    store: Store,
    tree: Path,
    tmp_path: Path,
    name: str,
    paths: dict[str, str],
    says: str,
) -> None:
    (tmp_path / "outside").mkdir()
    series = hostile_series(tree, tmp_path, name, paths)

    with pytest.raises(UserError, match="patch 2/2") as refused:
        intake(config, store, series, tree=tree)

    assert says in str(refused.value)
    assert list((tmp_path / "outside").iterdir()) == []  # nothing escaped the worktree
    assert count(store, Series) == 0  # and nothing half-written was kept
    assert list((config.data_dir / "worktrees").glob("*")) == []
