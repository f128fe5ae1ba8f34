# SPDX-License-Identifier: Apache-2.0
"""Real receivers for notifications, on this machine only: an HTTP server on
127.0.0.1 for webhooks, and a private D-Bus session bus (dbus-daemon) with a
notification server on it (org.freedesktop.Notifications, served with jeepney) for
notify-send."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jeepney import HeaderFields, MessageType, message_bus, new_method_return
from jeepney.io.blocking import open_dbus_connection


@dataclass
class Hook:
    url: str
    status: int = 204
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)  # (headers, json)


@contextmanager
def webhook_receiver(status: int = 204) -> Iterator[Hook]:
    hook = Hook(url="", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.requests.append((dict(self.headers.items()), json.loads(body)))
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/farm-events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Desktop:
    address: str
    shown: list[dict[str, Any]] = field(default_factory=list)


def _serve_notifications(
    address: str, desktop: Desktop, ready: threading.Event, stop: threading.Event
) -> None:
    conn = open_dbus_connection(address)
    conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.Notifications"))
    ready.set()
    while not stop.is_set():
        try:
            msg = conn.receive(timeout=0.2)
        except TimeoutError:
            continue
        if msg.header.message_type != MessageType.method_call:
            continue
        member = msg.header.fields.get(HeaderFields.member)
        if member == "Notify":
            app, _, _, summary, body, _, hints, _ = msg.body
            urgency = hints.get("urgency", ("y", 1))[1]
            desktop.shown.append({"app": app, "summary": summary, "body": body, "urgency": urgency})
            conn.send(new_method_return(msg, "u", (len(desktop.shown),)))
        elif member == "GetCapabilities":
            conn.send(new_method_return(msg, "as", (["body"],)))
        elif member == "GetServerInformation":
            conn.send(new_method_return(msg, "ssss", ("farm-test", "farm", "1", "1.2")))
    conn.close()


@contextmanager
def session_bus(tmp: Path) -> Iterator[Desktop]:
    """A private session bus (real dbus-daemon) with a notification server on it."""
    socket = tmp / "bus"
    daemon = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--print-address",
            f"--address=unix:path={socket}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()
    desktop = Desktop(address)
    ready, stop = threading.Event(), threading.Event()
    server = threading.Thread(
        target=_serve_notifications, args=(address, desktop, ready, stop), daemon=True
    )
    server.start()
    try:
        assert ready.wait(10), "the notification server did not start"
        yield desktop
    finally:
        stop.set()
        server.join(5)
        daemon.terminate()
        daemon.wait(10)
