# SPDX-License-Identifier: Apache-2.0
"""Power plugins: how a host is switched off and on, registered by name.

- ``none``: farm cannot switch the host; power actions are a configuration error.
- ``command``: templates from farm.toml run on the controller (IPMI, a smart plug...).
- ``manual``: a human switches the host; farm asks, and waits for an answer with a timeout.
- ``qemu``: the VM's process (see farm.hosts.qemu).
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from farm.config import POWER_FIELDS, HostConfig
from farm.errors import InfraError, UserError
from farm.hosts.base import Power
from farm.hosts.console import host_dir
from farm.hosts.qemu import QemuVm

log = logging.getLogger(__name__)

State = Literal["on", "off", "unknown"]


class NoPower(Power):
    name = "none"

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.host = config.name

    def _refuse(self, action: str) -> None:
        raise UserError(
            f"host {self.host} has no power control, so farm cannot switch it {action}",
            hint=f'set [hosts.power] kind = "command" with on/off commands for {self.host}',
        )

    def on(self) -> None:
        self._refuse("on")

    def off(self) -> None:
        self._refuse("off")

    def cycle(self) -> None:
        self._refuse("off and on")

    def state(self) -> State:
        return "unknown"


class ManualPower(NoPower):
    """A human is the power switch: farm asks (a log line, and an alert row once the
    scheduler wires ``alert``), then waits up to ``power.timeout`` for
    ``farm hosts power-done NAME``. The request and its answer are files in the host's
    directory, so the CLI answers a worker in another process."""

    name = "manual"
    poll = 1.0

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        super().__init__(config, data_dir)
        self.timeout = config.power.timeout
        self.request, self.done = manual_paths(config, data_dir)
        self.alert: Callable[[str], None] = lambda message: None

    def _refuse(self, action: str) -> None:
        token = uuid.uuid4().hex
        message = (
            f"host {self.host} needs a human: switch it {action} by hand, "
            f"then run `farm hosts power-done {self.host}`"
        )
        self.request.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.done.unlink(missing_ok=True)
        _write_atomic(self.request, json.dumps({"token": token, "action": action}))
        log.warning("%s (waiting up to %gs)", message, self.timeout)
        self.alert(message)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._answered(token):
                log.info("host %s: a human switched it %s", self.host, action)
                return
            time.sleep(self.poll)
        self.request.unlink(missing_ok=True)
        raise InfraError(
            f"host {self.host}: nobody switched it {action} within {self.timeout:g}s",
            hint=f"switch it by hand, then `farm hosts check {self.host}`",
        )

    def _answered(self, token: str) -> bool:
        try:
            answered = self.done.read_text().strip() == token
        except FileNotFoundError:
            return False
        if answered:
            self.request.unlink(missing_ok=True)
            self.done.unlink(missing_ok=True)
        return answered


def manual_paths(config: HostConfig, data_dir: Path) -> tuple[Path, Path]:
    """Where a manual power request waits, and where its answer goes."""
    directory = host_dir(config, data_dir)
    return directory / "power-request.json", directory / "power-done"


def acknowledge_manual(config: HostConfig, data_dir: Path) -> str | None:
    """Answer the pending manual power request of a host: the action, or None."""
    request, done = manual_paths(config, data_dir)
    try:
        asked = json.loads(request.read_text())
    except FileNotFoundError:
        return None
    _write_atomic(done, str(asked["token"]))
    return str(asked["action"])


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class CommandPower(Power):
    """Runs the configured templates as argument lists, never through a shell: each
    placeholder is filled within one word of the split template, so a host value can
    never become syntax (the values are validated names at config load too)."""

    name = "command"

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.config = config
        self._values = {field: str(getattr(config, field)) for field in POWER_FIELDS}

    def command(self, action: str) -> list[str]:
        template = getattr(self.config.power, action)
        if template is None:
            raise UserError(f"host {self.config.name}: power.{action} is not configured")
        return [word.format_map(self._values) for word in shlex.split(template)]

    def _run(self, action: str) -> None:
        argv = self.command(action)
        shown, timeout = shlex.join(argv), self.config.power.timeout
        what = f"power {action} of {self.config.name}"
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"{what} did not finish within {timeout:g}s: {shown}") from exc
        except OSError as exc:
            raise InfraError(
                f"{what}: cannot run {argv[0]}: {exc.strerror}",
                hint=f"install it on the controller or fix [hosts.power] {action}",
            ) from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-1000:]
            raise InfraError(
                f"{what} failed (exit {done.returncode}): {shown}"
                + (f"\n{output}" if output else "")
            )

    def on(self) -> None:
        self._run("on")

    def off(self) -> None:
        self._run("off")

    def cycle(self) -> None:
        if self.config.power.cycle:
            self._run("cycle")
        else:
            self.off()
            self.on()

    def state(self) -> State:
        return "unknown"


class QemuPower(Power):
    """The VM's process, through QMP: off powers it off (the guest's power button first
    for ``qemu.powerdown_seconds``), on starts it with the last kernel, a cycle is the
    reset button of a running VM."""

    name = "qemu"

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.vm = QemuVm(config, data_dir)

    def on(self) -> None:
        self.vm.start()

    def off(self) -> None:
        self.vm.stop(grace=self.vm.qemu.powerdown_seconds)

    def cycle(self) -> None:
        try:
            self.vm.reset()
        except InfraError as exc:  # not running, or QEMU wedged: a cold start instead
            log.info("%s: reset failed (%s); restarting QEMU", self.vm.config.name, exc)
            self.vm.stop()
            self.vm.start()

    def state(self) -> State:
        return "on" if self.vm.pid() else "off"
