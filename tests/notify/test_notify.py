# SPDX-License-Identifier: Apache-2.0
"""Notifications, each channel against a real local receiver: an HTTP server on
127.0.0.1 for the webhook, aiosmtpd with STARTTLS and a login for email, a private
dbus-daemon session bus with a notification server for notify-send; and the scheduler
announcing them where it writes a bisection's conclusion or a host going BAD, delivered
only once that transaction commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from mailserver import USER, MailServer

from farm.config import FarmConfig, load_config
from farm.ending import Cause, Verdict, only
from farm.errors import UserError
from farm.notify import Event, deliver
from farm.notify.event import EventKind
from farm.scheduler import health, notifying
from farm.scheduler.bisecting import tick_bisections
from farm.store import Store
from farm.store.hosts import Health
from farm.store.runs import Run, RunKind, RunState

from .receivers import session_bus, webhook_receiver

EVENT = Event(
    kind=EventKind.RUN_END,
    title="run 7 on laptop (+05): FAIL",
    text="crash: BUG: corrupted list in deferred_split_scan",
    urgent=True,
    fields={"run": 7, "host": "laptop", "verdict": "FAIL"},
)


def configure(farm_toml: Path, text: str) -> FarmConfig:
    farm_toml.write_text(farm_toml.read_text() + text)
    return load_config(farm_toml)


def webhook_toml(url: str, token_file: Path | None = None, events: str = '["webhook"]') -> str:
    token = f'webhook_token_file = "{token_file}"\n' if token_file else ""
    return (
        f"[notify]\nrun_end = {events}\nculprit = {events}\nhost_bad = {events}\n"
        f'webhook_url = "{url}"\n{token}'
    )


def test_a_webhook_gets_the_event_as_json_with_its_token(farm_toml: Path, tmp_path: Path) -> None:
    token = tmp_path / "hook-token"
    token.write_text("t0ken-for-the-hook\n")
    token.chmod(0o600)
    with webhook_receiver() as hook:
        config = configure(farm_toml, webhook_toml(hook.url, token))
        assert deliver(EVENT, config) == {"webhook": "sent"}
    [(headers, body)] = hook.requests
    assert headers["Authorization"] == "Bearer t0ken-for-the-hook"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "event": "run_end",
        "title": "run 7 on laptop (+05): FAIL",
        "text": "crash: BUG: corrupted list in deferred_split_scan",
        "urgent": True,
        "fields": {"run": 7, "host": "laptop", "verdict": "FAIL"},
    }


def test_the_user_gets_an_email_through_the_reports_sender(
    farm_toml: Path, smtp_server: MailServer
) -> None:
    config = configure(
        farm_toml,
        smtp_server.toml() + '[notify]\nrun_end = ["email"]\nemail = "Me <me@example.org>"\n',
    )
    assert deliver(EVENT, config) == {"email": "sent"}
    [got] = smtp_server.messages
    assert got.tls and got.login == USER
    assert got.rcpt_tos == ["me@example.org"]  # the user, never a list
    text = got.content.decode()
    assert "Subject: [farm] run 7 on laptop (+05): FAIL" in text
    assert "Auto-Submitted: auto-generated" in text
    assert "crash: BUG: corrupted list in deferred_split_scan" in text


def test_a_desktop_notification_reaches_the_session_bus(
    farm_toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(farm_toml, '[notify]\nrun_end = ["desktop"]\n')
    with session_bus(tmp_path) as desktop:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.address)
        assert deliver(EVENT, config) == {"desktop": "sent"}
    assert desktop.shown == [
        {
            "app": "farm",
            "summary": "run 7 on laptop (+05): FAIL",
            "body": "crash: BUG: corrupted list in deferred_split_scan",
            "urgency": 2,  # critical: a failure
        }
    ]


def test_without_a_session_bus_the_desktop_channel_is_skipped(
    farm_toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    config = configure(farm_toml, '[notify]\nrun_end = ["desktop"]\n')
    assert deliver(EVENT, config) == {"desktop": "skipped: no session bus"}


def test_a_failing_channel_is_logged_and_the_others_still_deliver(
    farm_toml: Path, smtp_server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    with webhook_receiver(status=503) as hook:
        config = configure(
            farm_toml,
            smtp_server.toml()
            + webhook_toml(hook.url, events='["webhook", "email"]')
            + 'email = "me@example.org"\n',
        )
        outcomes = deliver(EVENT, config)
    assert outcomes["webhook"] == f"failed: webhook {hook.url} answered 503"
    assert outcomes["email"] == "sent" and len(smtp_server.messages) == 1
    assert "notification 'run 7 on laptop (+05): FAIL' by webhook failed" in caplog.text


def test_an_event_is_delivered_only_once_its_transaction_commits(
    farm_toml: Path, store: Store
) -> None:
    with webhook_receiver() as hook:
        config = configure(farm_toml, webhook_toml(hook.url))
        with pytest.raises(RuntimeError), store.session() as session:
            notifying.announce(session, config, EVENT)
            raise RuntimeError("the step failed: its outcome is not written")
        assert hook.requests == []
        with store.session() as session:
            notifying.announce(session, config, EVENT)
            assert hook.requests == []  # not before the commit
        assert [body["title"] for _, body in hook.requests] == [EVENT.title]


def test_a_host_that_fails_its_health_check_announces_it_is_bad(
    farm_toml: Path, store: Store
) -> None:
    with webhook_receiver() as hook:
        config = configure(farm_toml, webhook_toml(hook.url))
        with store.session() as session:
            run = Run(
                kind=RunKind.HEALTH, upto=0, commit="running", host="laptop", load="idle",
                soak_seconds=60, state=RunState.DONE, verdict=Verdict.INFRA,
                ending=only(Cause.LOAD, "load idle exited with status 7"),
            )  # fmt: skip
            session.add(run)
            session.flush()
            health.after_run(session, config, run)
            assert health.state_of(session, "laptop") == Health.BAD
    [(_, body)] = hook.requests
    assert body["event"] == "host_bad"
    assert body["title"] == "host laptop is BAD and gets no work"
    assert body["fields"]["reason"].startswith(f"health check run {run.id} failed")
    assert "farm hosts maintenance laptop off" in body["text"]


def test_a_concluded_bisection_announces_its_culprit(
    farm_toml: Path, store: Store, tmp_path: Path
) -> None:
    from report.scenario import CULPRIT, failing_story

    with webhook_receiver() as hook:
        config = configure(farm_toml, webhook_toml(hook.url))
        story = failing_story(config, store, tmp_path)
        tick_bisections(config, store)
    [(_, body)] = hook.requests
    assert body["event"] == "culprit"
    assert body["title"] == f"bisection {story.bisection_id}: first bad patch {CULPRIT:02d}"
    assert body["fields"]["culprit"] == CULPRIT
    assert f"farm report {story.bisection_id} --send" in body["text"]


def test_email_notifications_need_an_address_and_a_server(farm_toml: Path) -> None:
    with pytest.raises(UserError, match=r"notify\.email"):
        configure(farm_toml, '[notify]\nculprit = ["email"]\n')
    farm_toml.write_text(farm_toml.read_text().split("[notify]")[0])
    with pytest.raises(UserError, match=r"\[mail\] has no smtp server"):
        configure(farm_toml, '[notify]\nculprit = ["email"]\nemail = "me@example.org"\n')
