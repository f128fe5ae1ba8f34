# SPDX-License-Identifier: Apache-2.0
"""Passwords and tokens in database and broker URLs never reach output or logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from celery.apps.beat import Beat
from celery.apps.worker import Worker
from celery.beat import Service

from farm.cli import main
from farm.config import load_config, redact
from farm.errors import UserError
from farm.scheduler.app import create_app
from farm.store.base import make_engine

DB_PASSWORD = "db-s3cret-Pw"
BROKER_PASSWORD = "broker-s3cret-Pw"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (
            "rediss://farm:pw@redis.lan/0?ssl_cert_reqs=none",
            "rediss://farm:***@redis.lan/0?ssl_cert_reqs=none",
        ),
        (
            "postgresql+psycopg://farm:p%40ss@db:5432/farm",
            "postgresql+psycopg://farm:***@db:5432/farm",
        ),
        ("postgresql://farm:a/b#c@db/farm", "postgresql://farm:***@db/farm"),
        ("postgresql://farm:p@ss@db/farm", "postgresql://farm:***@db/farm"),
        (
            "redis+socket:///run/redis.sock?password=pw&db=0",
            "redis+socket:///run/redis.sock?password=***&db=0",
        ),
        ("http://h/api?token=t0k&x=1", "http://h/api?token=***&x=1"),
        ("sqlite:////srv/farm:a@b/farm.db", "sqlite:////srv/farm:a@b/farm.db"),
        ("postgresql://farm@db/farm", "postgresql://farm@db/farm"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("cannot parse 'postgres//farm:pw@db/farm'", "cannot parse 'postgres//farm:***@db/farm'"),
    ],
)
def test_redact_hides_the_password_and_keeps_the_rest(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.fixture
def secret_urls(farm_toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_DATABASE_URL", f"postgresql+psycopg://farm:{DB_PASSWORD}@db/farm")
    monkeypatch.setenv("FARM_BROKER_URL", f"redis://:{BROKER_PASSWORD}@redis.lan:6379/0")


@pytest.mark.usefixtures("secret_urls")
def test_config_check_shows_where_the_database_and_broker_are_but_not_their_passwords(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["config", "check"])
    text = capsys.readouterr().out
    main(["config", "check", "--json"])
    data = json.loads(capsys.readouterr().out)["config"]

    assert "database_url = postgresql+psycopg://farm:***@db/farm" in text
    assert "broker_url   = redis://:***@redis.lan:6379/0" in text
    assert data["database_url"] == "postgresql+psycopg://farm:***@db/farm"
    assert data["broker_url"] == "redis://:***@redis.lan:6379/0"
    for secret in (DB_PASSWORD, BROKER_PASSWORD):
        assert secret not in text + json.dumps(data)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+nosuchdriver://farm:{DB_PASSWORD}@db/farm",
        f"postgres//farm:{DB_PASSWORD}@db/farm",
    ],
    ids=["unknown-driver", "unparseable"],
)
def test_an_unusable_database_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(UserError) as raised:
        make_engine(url)

    assert "is not usable" in str(raised.value)
    assert "farm:***@db/farm" in str(raised.value)
    assert DB_PASSWORD not in str(raised.value)


@pytest.mark.usefixtures("secret_urls")
@pytest.mark.filterwarnings("ignore::celery.platforms.SecurityWarning")  # tests run as root
def test_the_celery_banners_of_farm_worker_and_beat_hide_the_broker_password() -> None:
    app = create_app(load_config())
    banners = Worker(app=app).startup_info() + Beat(app=app).startup_info(Service(app))

    assert "redis.lan:6379" in banners
    assert BROKER_PASSWORD not in banners
