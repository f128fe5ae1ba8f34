"""Power plugins: how a host is switched off and on, registered by name.

- ``none``: farm cannot switch the host; power actions are a configuration error.
- ``command``: templates from farm.toml run on the controller (IPMI, a smart plug...).
- ``manual``: a human switches the host; farm says so instead of waiting forever.
- ``qemu``: the VM's process (see farm.hosts.qemu).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Literal

from farm.config import POWER_FIELDS, HostConfig
from farm.errors import InfraError, UserError
from farm.hosts.base import Power
from farm.hosts.qemu import QemuVm

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
    """A human is the power switch: until the lab has a bot, say who must act."""

    name = "manual"

    def _refuse(self, action: str) -> None:
        raise InfraError(
            f"host {self.host} needs a human: switch it {action} by hand",
            hint=f"then `farm hosts check {self.host}`",
        )


class CommandPower(Power):
    """Runs the configured templates with ``sh -c``; host values are shell-quoted."""

    name = "command"

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.config = config
        values = {field: str(getattr(config, field)) for field in POWER_FIELDS}
        self._values = {key: shlex.quote(value) for key, value in values.items()}

    def command(self, action: str) -> str:
        template = getattr(self.config.power, action)
        if template is None:
            raise UserError(f"host {self.config.name}: power.{action} is not configured")
        rendered: str = template.format_map(self._values)
        return rendered

    def _run(self, action: str) -> None:
        command = self.command(action)
        timeout = self.config.power.timeout
        try:
            done = subprocess.run(
                ["sh", "-c", command], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"power {action} of {self.config.name} did not finish within {timeout:g}s: "
                + command
            ) from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-1000:]
            raise InfraError(
                f"power {action} of {self.config.name} failed (exit {done.returncode}): "
                f"{command}" + (f"\n{output}" if output else "")
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
    """The VM's process: off kills it, on starts it again with the last kernel."""

    name = "qemu"

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        self.vm = QemuVm(config, data_dir)

    def on(self) -> None:
        self.vm.start()

    def off(self) -> None:
        self.vm.stop()

    def cycle(self) -> None:
        self.vm.stop()
        self.vm.start()

    def state(self) -> State:
        return "on" if self.vm.pid() else "off"
