# SPDX-License-Identifier: Apache-2.0
"""A generic webhook: the event as JSON, POSTed to [notify] webhook_url, with
``Authorization: Bearer <token>`` when webhook_token_file is set."""

from __future__ import annotations

import httpx

from farm.config import FarmConfig, read_secret, redact
from farm.errors import InfraError
from farm.notify.event import Event


def send(event: Event, config: FarmConfig) -> bool:
    notify = config.notify
    assert notify.webhook_url is not None  # NotifyConfig's validator
    headers = {"User-Agent": "farm"}
    if notify.webhook_token_file is not None:
        token = read_secret(notify.webhook_token_file, "webhook token")
        headers["Authorization"] = f"Bearer {token}"
    where = redact(notify.webhook_url)
    try:
        response = httpx.post(
            notify.webhook_url, json=event.as_json(), headers=headers, timeout=notify.timeout
        )
    except httpx.HTTPError as exc:
        raise InfraError(f"webhook {where} unreachable: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise InfraError(f"webhook {where} answered {response.status_code}")
    return True
