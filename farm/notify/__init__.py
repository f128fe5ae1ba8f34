# SPDX-License-Identifier: Apache-2.0
"""Telling the user that something finished: a submitted run ended, a bisection
concluded, a host went BAD. Each event goes to the channels farm.toml's [notify] lists
for it (desktop, email, webhook). A failing channel is logged and reported back, never
raised: a notification must not fail the run it is about.

Which events happen is decided in farm.scheduler (farm.scheduler.notifying); this
package only delivers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from farm.config import FarmConfig, NotifyChannel
from farm.errors import FarmError
from farm.notify import desktop, mail, webhook
from farm.notify.event import Event

log = logging.getLogger(__name__)

Channel = Callable[[Event, FarmConfig], bool]
CHANNELS: dict[NotifyChannel, Channel] = {
    "desktop": desktop.send,
    "email": mail.send,
    "webhook": webhook.send,
}


def deliver(event: Event, config: FarmConfig) -> dict[str, str]:
    """Send ``event`` on each channel configured for its kind; channel -> outcome
    ("sent", "skipped: why" or "failed: why")."""
    outcomes: dict[str, str] = {}
    for name in getattr(config.notify, event.kind.value):
        try:
            outcomes[name] = "sent" if CHANNELS[name](event, config) else "skipped: no session bus"
        except FarmError as exc:
            outcomes[name] = f"failed: {exc}"
            log.warning("notification %r by %s failed: %s", event.title, name, exc)
    return outcomes


__all__ = ["Event", "deliver"]
