# SPDX-License-Identifier: Apache-2.0
"""farm submit MSGID / lore URL / - / b4's .mbx: series straight from the archive.

A real HTTP server on 127.0.0.1 serves the thread as public-inbox does
(``/<list>/<msgid>/t.mbox.gz``); no test touches the internet.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from farm.errors import UserError
from farm.git import git
from farm.intake.lore import checked_message_id, lore_target
from farm.intake.mbox import read_mails
from farm.store import Store
from farm.store.series import Patch

from .conftest import MBOXES, Outcome, Upstream
from .gitrepo import commit, edit

Farm = Callable[..., Outcome]
THREAD = MBOXES / "lore-thread.mbox"
V2_COVER = next(m.message_id for m in read_mails(THREAD) if m.subject.startswith("[PATCH v2 0/5]"))
V2_PATCH_2 = next(
    m.message_id for m in read_mails(THREAD) if m.subject.startswith("[PATCH v2 2/5]")
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def lore(tmp_path: Path) -> Iterator[str]:
    """An archive on 127.0.0.1 holding the thread under /all/ and /linux-mm/, by the
    Message-ID of its v2 cover and of v2 patch 2 (as lore answers for any message)."""
    root = tmp_path / "lore"
    thread = gzip.compress(THREAD.read_bytes())
    for lst in ("all", "linux-mm"):
        for msgid in (V2_COVER, V2_PATCH_2):
            assert msgid
            folder = root / lst / msgid.strip("<>")
            folder.mkdir(parents=True)
            (folder / "t.mbox.gz").write_bytes(thread)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def lore_toml(farm_toml: Path, lore: str) -> Path:
    farm_toml.write_text(farm_toml.read_text() + f'\n[intake]\nlore_url = "{lore}"\n')
    return farm_toml


def test_a_message_id_fetches_the_thread_and_takes_v2_with_the_replies_trailers(
    farm: Farm, lore_toml: Path
) -> None:
    result = farm("submit", "--dry-run", "--json", V2_PATCH_2 or "")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["series"]["version"], data["series"]["total"]) == (2, 5)
    assert data["series"]["cover_message_id"] == V2_COVER
    acked = "Acked-by: Mae Ntainer <maint@example.org>"
    assert data["patches"][1]["trailers"] == [
        "Reviewed-by: Rev Iewer <reviewer@example.net>",
        acked,
        "Tested-by: Tess Ter <tess@example.com>",  # given in a reply to the review
    ]
    assert [p["trailers"] for p in data["patches"][2:]] == [[acked]] * 3
    assert "also holds v1 (5 of 5); using v2 (5 of 5), the newest" in data["warnings"][-1]
    assert "Linus Torvalds" in " ".join(data["warnings"])  # a forged trailer is not taken
    assert "fetching http://127.0.0.1:" in result.err


def test_a_lore_url_is_fetched_from_its_own_archive_and_list(farm: Farm, lore: str) -> None:
    quoted = urllib.parse.quote((V2_COVER or "").strip("<>"))
    result = farm("submit", "--dry-run", "--json", f"{lore}/linux-mm/{quoted}/T/#t")
    assert result.code == 0, result.err
    assert json.loads(result.out)["series"]["version"] == 2
    assert f"fetching {lore}/linux-mm/" in result.err


def test_an_unknown_message_id_is_the_users_error(farm: Farm, lore_toml: Path) -> None:
    result = farm("submit", "--dry-run", "<nobody-sent-this@example.org>")
    assert result.code == 1
    assert "has no message <nobody-sent-this@example.org>" in result.err
    assert "hint: check the Message-ID" in result.err


def test_an_unreachable_archive_is_an_infrastructure_error(farm: Farm, farm_toml: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    farm_toml.write_text(
        farm_toml.read_text() + f'\n[intake]\nlore_url = "http://127.0.0.1:{port}"\n'
    )
    result = farm("submit", "--dry-run", "some-patch@example.org")
    assert result.code == 3
    assert f"cannot reach http://127.0.0.1:{port}/all" in result.err
    assert "b4 am -o - MSGID | farm submit -" in result.err


@pytest.mark.parametrize(
    "text", ["a b@example.org", "<x@y>z", "x\n@y", "@", "\x1b[2J@example.org", "x" * 1200 + "@y"]
)
def test_a_malformed_message_id_is_refused_before_any_url_is_made(text: str) -> None:
    with pytest.raises(UserError, match="is not a Message-ID"):
        checked_message_id(text)


def test_a_hostile_message_id_stays_inside_the_archive_path() -> None:
    target = lore_target("http://127.0.0.1:1/all/..%2F..%2Fadmin%3Fx%23y@evil.example/", "x")
    assert target is not None
    parts = urllib.parse.urlsplit(target.url)
    assert (parts.netloc, parts.query, parts.fragment) == ("127.0.0.1:1", "", "")
    assert parts.path.startswith("/all/") and parts.path.endswith("/t.mbox.gz")
    assert parts.path.count("/") == 3  # /all/<one segment>/t.mbox.gz
    assert target.message_id == "../../admin?x#y@evil.example"


def test_a_file_named_like_a_message_id_is_read_as_a_file(
    farm: Farm, farm_toml: Path, tmp_path: Path
) -> None:
    local = tmp_path / "series@example.org"
    local.write_bytes((MBOXES / "series-v2.mbox").read_bytes())
    result = farm("submit", "--dry-run", "--json", str(local))
    assert result.code == 0, result.err
    assert "fetching" not in result.err


@pytest.mark.slow
def test_standard_input_is_read_with_a_dash(farm_toml: Path) -> None:
    """As in ``b4 am -o - MSGID | farm submit -`` (a real process and a real pipe)."""
    done = subprocess.run(
        [sys.executable, "-m", "farm", "submit", "-", "--dry-run", "--json"],
        input=THREAD.read_bytes(),
        capture_output=True,
        check=False,
        cwd=farm_toml.parent,
    )
    assert done.returncode == 0, done.stderr.decode()
    data = json.loads(done.stdout)
    assert (data["series"]["version"], len(data["patches"])) == (2, 5)


def test_b4s_mbx_is_read_with_the_cover_beside_it(farm: Farm, tmp_path: Path) -> None:
    """``b4 am -o DIR`` writes v2_..._slug.mbx (the patches) and .cover (the cover
    letter alone, without an mbox From line)."""
    mails = read_mails(MBOXES / "series-v2.mbox")
    cover, patches = mails[0], mails[1:]
    (tmp_path / "v2_20231114_ada_fix.cover").write_bytes(cover.raw)
    (tmp_path / "v2_20231114_ada_fix.mbx").write_bytes(
        b"".join(b"From git@z Thu Jan  1 00:00:00 1970\n" + p.raw for p in patches)
    )
    result = farm("submit", "--dry-run", "--json", str(tmp_path / "v2_20231114_ada_fix.mbx"))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["series"]["cover_message_id"] == cover.message_id
    assert data["series"]["title"] == "mm: fix deferred split accounting"


def without_base_commit(tmp_path: Path) -> Path:
    text = (MBOXES / "series-v2.mbox").read_text()
    lines = [line for line in text.splitlines(True) if not line.startswith("base-commit:")]
    path = tmp_path / "no-base.mbox"
    path.write_text("".join(lines))
    return path


@pytest.mark.slow
def test_guess_base_finds_the_commit_the_diffs_start_from(
    farm: Farm, tree: Path, upstream: Upstream, tmp_path: Path
) -> None:
    edit(tree, "mm/vmscan.c", 5, "static int scan_5 = 6;")  # HEAD moved on: not the base
    commit(tree, "mm/vmscan: later work", tick=40)
    mbox = without_base_commit(tmp_path)
    result = farm("submit", "--json", "--guess-base", "--tree", str(tree), str(mbox))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["base"] == upstream.base
    assert any(w.startswith(f"guessed base {upstream.base[:12]}") for w in data["warnings"])


def test_without_guess_base_a_series_without_base_says_how_to_find_one(
    farm: Farm, tree: Path, tmp_path: Path
) -> None:
    result = farm("submit", "--tree", str(tree), str(without_base_commit(tmp_path)))
    assert result.code == 1
    assert "--guess-base" in result.err


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no race: CI time
def test_a_series_from_lore_is_applied_and_series_show_lists_its_trailers(
    farm: Farm, lore: str, lore_toml: Path, tree: Path, store: Store
) -> None:
    applied = farm("submit", "--json", "--tree", str(tree), V2_COVER or "")
    assert applied.code == 0, applied.err
    series_id = json.loads(applied.out)["series_id"]
    with store.session() as session:
        sources = {p.series.source for p in session.scalars(select(Patch))}
    assert sources == {f"{lore}/all/{(V2_COVER or '').strip('<>')}/t.mbox.gz"}
    shown = farm("series", "show", str(series_id), "--json")
    patches = json.loads(shown.out)["patches"]
    assert patches[1]["trailers"][0] == {
        "name": "Reviewed-by",
        "value": "Rev Iewer <reviewer@example.net>",
        "message_id": "<rev-v2-2@example.net>",
    }
    text = farm("series", "show", str(series_id)).out
    assert "      Tested-by: Tess Ter <tess@example.com>" in text
    assert git(tree, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("<20231114.1-a@x.org>", "https://lore.example/all/20231114.1-a@x.org/t.mbox.gz"),
        ("20231114.1-a@x.org", "https://lore.example/all/20231114.1-a@x.org/t.mbox.gz"),
        (
            "https://lore.kernel.org/linux-mm/20231114.1-a@x.org/T/#u",
            "https://lore.kernel.org/linux-mm/20231114.1-a@x.org/t.mbox.gz",
        ),
        (
            "https://lore.kernel.org/r/20231114.1-a@x.org",
            "https://lore.kernel.org/all/20231114.1-a@x.org/t.mbox.gz",
        ),
        (
            "https://lore.kernel.org/all/a%2Bb%25c@x.org/",
            "https://lore.kernel.org/all/a+b%25c@x.org/t.mbox.gz",
        ),
    ],
)
def test_message_ids_and_lore_urls_name_the_threads_mbox(text: str, url: str) -> None:
    target = lore_target(text, "https://lore.example/")
    assert target is not None and target.url == url


@pytest.mark.parametrize("text", ["series.mbox", "-", "patches/", "~/mail/x@y/cur"])
def test_paths_are_not_message_ids(text: str) -> None:
    assert lore_target(text, "https://lore.example") is None
