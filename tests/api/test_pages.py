# SPDX-License-Identifier: Apache-2.0
"""The web view's rules, without a browser: who may see and who may act, the login
cookie, the CSRF token of forms, and hostile text escaped. (tests/web loads the
pages in Chromium over a real soak.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from farm.api import create_app
from farm.errors import UserError
from farm.store import Store
from farm.store.runs import Run, RunState
from farm.store.series import Patch

from .conftest import AUTH, TOKEN, Scenario

ADMIN = "admin-token-0123456789abcdef"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
BROWSER = {"Accept": "text/html,application/xhtml+xml"}
HOSTILE = "mm: <script>alert(1)</script> \x1b[2J & more"


@pytest.fixture
def web(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, TOKEN, admin_token=ADMIN)) as client:
        yield client


def log_in(client: TestClient, token: str) -> str:
    """The CSRF token of the session the login form started."""
    answer = client.post("/login", data={"token": token, "next": "/runs"}, follow_redirects=False)
    assert answer.status_code == 303
    page = client.get("/hosts").text
    found = re.search(r'name="csrf" value="([0-9a-f]*)"', page)
    assert found is not None
    return found.group(1)


def run_state(store: Store, run_id: int) -> RunState:
    with store.session() as db:
        run = db.get(Run, run_id)
        assert run is not None
        return run.state


def test_a_browser_without_a_session_is_sent_to_the_login_form(web: TestClient) -> None:
    answer = web.get("/runs/3", headers=BROWSER, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/login?next=/runs/3")


def test_an_api_client_without_a_token_still_gets_401(web: TestClient) -> None:
    assert web.get("/runs").status_code == 401
    assert web.get("/api/runs", headers=BROWSER).status_code == 401


def test_the_login_cookie_is_httponly_samesite_strict_and_a_wrong_token_gets_none(
    web: TestClient,
) -> None:
    wrong = web.post("/login", data={"token": "guess-guess-guess-guess"})
    right = web.post("/login", data={"token": TOKEN}, follow_redirects=False)

    assert wrong.status_code == 401 and "wrong token" in wrong.text
    assert "set-cookie" not in wrong.headers
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie


def test_login_never_redirects_to_another_site(web: TestClient) -> None:
    answer = web.post(
        "/login", data={"token": TOKEN, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert answer.headers["location"] == "/runs"


def test_a_reader_sees_pages_but_cannot_act(
    web: TestClient, store: Store, scenario: Scenario
) -> None:
    csrf = log_in(web, TOKEN)
    page = web.get(f"/runs/{scenario.soaking_run}")
    refused = web.post(f"/runs/{scenario.soaking_run}/cancel", data={"csrf": csrf})
    by_bearer = web.post(f"/runs/{scenario.soaking_run}/cancel", headers=AUTH)

    assert page.status_code == 200 and "cancel this run" not in page.text
    assert refused.status_code == by_bearer.status_code == 403
    assert run_state(store, scenario.soaking_run) == RunState.SOAKING


def test_an_admins_form_needs_the_sessions_csrf_token(
    web: TestClient, store: Store, scenario: Scenario
) -> None:
    csrf = log_in(web, ADMIN)
    url = f"/runs/{scenario.soaking_run}/cancel"

    without = web.post(url, data={})
    forged = web.post(url, data={"csrf": "0" * 64})
    elsewhere = web.post(url, data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert [without.status_code, forged.status_code, elsewhere.status_code] == [403, 403, 403]
    assert run_state(store, scenario.soaking_run) == RunState.SOAKING

    done = web.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, url.removesuffix("/cancel"))
    page = web.get(f"/runs/{scenario.soaking_run}").text
    assert "cancel this run" not in page and "it stops at its next step" in page


def test_an_admin_bearer_acts_without_a_form_token(
    web: TestClient, store: Store, scenario: Scenario
) -> None:
    answer = web.post(
        f"/runs/{scenario.leaking_run}/bisect", headers=ADMIN_AUTH, follow_redirects=False
    )
    assert answer.status_code == 303
    assert re.fullmatch(r"/bisections/\d+", answer.headers["location"])
    page = web.get(answer.headers["location"], headers=AUTH)
    assert "nr_anon_partially_mapped" in page.text and "admin-token" not in page.text


def test_a_session_cookie_cannot_post_to_the_json_api(web: TestClient) -> None:
    log_in(web, ADMIN)
    answer = web.post("/api/alerts", json={"version": "4", "status": "firing", "alerts": []})
    assert answer.status_code == 401


def test_hostile_subjects_are_escaped_and_control_characters_shown(
    web: TestClient, store: Store, scenario: Scenario
) -> None:
    with store.session() as db:
        db.add(
            Patch(series_id=scenario.series, index=1, subject=HOSTILE, full_subject=HOSTILE,
                  author="Mallory <m@evil>", raw=b"")
        )  # fmt: skip
    page = web.get(f"/series/{scenario.series}", headers=AUTH)

    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\x1b[2J &amp; more" in page.text
    assert "\x1b" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_admin_token_may_not_be_the_read_token(store: Store) -> None:
    with pytest.raises(UserError, match="admin token is the read token"):
        create_app(store, TOKEN, admin_token=TOKEN)
