# SPDX-License-Identifier: Apache-2.0
"""A simulated host (kind ``sim``), for measuring the scheduler at scale only.

It lives beside the soak, whose commands it answers; ``register()`` adds the kind to
farm.hosts' registry (the workers call it), which cannot import the soak itself.

Like tuxmake's null runtime: it sits at the transport seam and answers from a model
in this process, with no SSH, VM or machine behind it, so that a thousand hosts soak
on one controller and the scheduler's own cost (Celery, Redis, the store) is what gets
measured (benchmarks/scheduler_scale.py). It is never a stand-in in a feature test:
those use real sshd, QEMU and machines.

The model answers the farm-authored commands the soak pipeline sends (a sample, a
load's start, probe and stop, ``uname -r``) and nothing else: any other command
succeeds silently. Boots take no time, write a banner to the host's console file and
give a new boot id; counters drift with uptime; the load "runs" for its seconds. A
host whose model has ``mttf_hours`` crashes at random (a console oops, then silence
until it is booted or power-cycled again). State is a small JSON file per host under
``<data_dir>/hosts/<name>/sim.json`` (written on boot, load start and stop only), so
any worker process can step any host.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from farm.config import HostConfig
from farm.hosts import HOST_KINDS
from farm.hosts.base import (
    BootableKernel,
    BootedKernel,
    BootMethod,
    CommandResult,
    Console,
    Host,
    HostHealth,
    HostUnreachable,
    Power,
    Transport,
)
from farm.hosts.console import console_path
from farm.soak.sampler import SEPARATOR, sample_command

RELEASE = "6.1.0-sim"
MEM_KB = 8 * 1024 * 1024
OOPS = (
    "BUG: unable to handle page fault for address: ffff888000000000",
    "#PF: supervisor read access in kernel mode",
    "Oops: 0000 [#1] PREEMPT SMP",
    "RIP: 0010:deferred_split_scan+0x1a/0x2c0",
    "Call Trace:",
    " <TASK>",
    " shrink_slab+0x1b2/0x2c0",
    " </TASK>",
    "Kernel panic - not syncing: Fatal exception",
)


class SimState:
    """The model of one host, kept in a file so every worker process sees it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            self.data = {"boot_id": str(uuid.uuid4()), "booted_at": time.time(), "loads": {}}
            self.data["release"], self.data["crashed"] = RELEASE, False
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)  # atomic: a reader never sees half a state

    def boot(self, release: str) -> None:
        self.data.update(boot_id=str(uuid.uuid4()), booted_at=time.time(), release=release)
        self.data.update(loads={}, crashed=False)
        self.save()


class SimTransport(Transport):
    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.state = host.state()
        if self.state.data["crashed"]:
            raise HostUnreachable(f"{host.name}: the simulated host crashed")

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        command = argv if isinstance(argv, str) else " ".join(argv)
        return CommandResult(command, 0, self._answer(argv), "")

    def _answer(self, argv: Sequence[str] | str) -> str:
        if isinstance(argv, str):
            if SEPARATOR in argv:
                return self._sample(argv)
            if argv.startswith("cd ") and "mkdir started" in argv:
                return self._start(argv.split()[1])
            if "/stopped" in argv and argv.startswith("if [ -f "):
                return self._stop(argv.split()[3].removesuffix("/pid"))
            return ""
        if list(argv) == ["uname", "-r"]:
            return str(self.state.data["release"])
        return ""

    def _sample(self, command: str) -> str:
        data = self.state.data
        if self.host.crashes_now():
            self.host.crash(self.state)
            raise HostUnreachable(f"{self.host.name}: the simulated host crashed")
        uptime = max(0.0, time.time() - data["booted_at"])
        drift = int(uptime)
        vmstat = {"nr_free_pages": 1_500_000 - drift % 1000, "nr_zspages": 0, "pgfault": drift * 97}
        vmstat |= {"nr_anon_transparent_hugepages": 0, "thp_split_page": drift // 10}
        meminfo = {"MemTotal": MEM_KB, "MemFree": MEM_KB // 2 - drift % 4096, "AnonPages": 4096}
        sections = [
            data["boot_id"],
            f"{uptime:.2f} {uptime * 1.9:.2f}",
            "0",
            "\n".join(f"{k} {v}" for k, v in vmstat.items()),
            "\n".join(f"{k}: {v} kB" for k, v in meminfo.items()),
        ]
        pulse = next((self._pulse(d) for d in data["loads"] if command == sample_command(d)), None)
        # The command's other sections (the mm families, the memcg) answer empty, as on
        # a kernel without them; the pulse, when asked, comes last.
        asked = command.count(f"echo {SEPARATOR}") + 1 - (pulse is not None)
        sections += [""] * (asked - len(sections))
        if pulse is not None:
            sections.append(pulse)
        return f"\n{SEPARATOR}\n".join(sections) + "\n"

    def _pulse(self, run_dir: str) -> str:
        load = self.state.data["loads"][run_dir]
        running = not load["stopped"] and time.time() < load["started"] + load["seconds"]
        return "alive" if running else "0"

    def _start(self, run_dir: str) -> str:
        loads = self.state.data["loads"]
        if run_dir in loads:
            return f"found {loads[run_dir]['pid']}"
        seconds = self.host.seconds_of(run_dir)
        loads[run_dir] = {"pid": 1000 + len(loads), "started": time.time(), "seconds": seconds}
        loads[run_dir]["stopped"] = False
        self.state.save()
        return f"fresh {loads[run_dir]['pid']}"

    def _stop(self, run_dir: str) -> str:
        if run_dir in self.state.data["loads"]:
            self.state.data["loads"][run_dir]["stopped"] = True
            self.state.save()
        return ""

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o644) -> None:
        if remote_path.endswith("/env.sh"):  # the load's seconds, read when it starts
            self.host.pending[remote_path.removesuffix("/env.sh")] = data.decode()

    def get(self, remote_path: str) -> bytes:
        return b""

    def close(self) -> None:
        pass


class SimPower(Power):
    """Power-cycling a simulated host boots it again at once."""

    name = "sim"

    def __init__(self, host: SimHost) -> None:
        self.host = host

    def on(self) -> None:
        self.cycle()

    def off(self) -> None:
        pass

    def cycle(self) -> None:
        state = self.host.state()
        state.boot(str(state.data["release"]))

    def state(self) -> Literal["on", "off", "unknown"]:
        return "on"


class SimHost(Host):
    """A host answered by the model above; ``mttf_hours`` is taken from its tags
    (``mttf=12``), so an inventory can mix crashing and stable simulated hosts."""

    def __init__(
        self,
        config: HostConfig,
        data_dir: Path,
        *,
        power: Power,
        console: Console,
        boot_method: BootMethod,
    ) -> None:
        super().__init__(config)
        self.data_dir = data_dir
        self.path = data_dir / "hosts" / config.name / "sim.json"
        self.console_file = console_path(config, data_dir)
        self._console = console
        self.pending: dict[str, str] = {}
        tagged = [t.removeprefix("mttf=") for t in config.tags if t.startswith("mttf=")]
        self.mttf_hours = float(tagged[0]) if tagged else None

    def state(self) -> SimState:
        return SimState(self.path)

    def transport(self, connect_timeout: float | None = None) -> Transport:
        return SimTransport(self)

    @property
    def power(self) -> Power:
        return SimPower(self)

    @property
    def console(self) -> Console:
        return self._console

    def boot(self, kernel: BootableKernel, *, cmdline: str = "") -> BootedKernel:
        state = self.state()
        state.boot(kernel.release)
        self._console_lines([f"Linux version {kernel.release} (farm-sim) {kernel.build_id}"])
        return BootedKernel(kernel.release, kernel.build_id, state.data["boot_id"])

    def wait_ready(self, timeout: float | None = None) -> BootedKernel:
        data = self.state().data
        return BootedKernel(data["release"], "", data["boot_id"])

    def boot_id(self) -> str:
        return str(self.state().data["boot_id"])

    def check(self) -> HostHealth:
        data = self.state().data
        return HostHealth(self.name, ok=True, kernel_release=data["release"])

    def seconds_of(self, run_dir: str) -> float:
        env = self.pending.pop(run_dir, "")
        words = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
        return float(words.get("FARM_SECONDS", "0"))

    def crashes_now(self) -> bool:
        """A crash within the next sample interval, at the model's failure rate (one
        draw per sample; samples are what the model sees of time)."""
        if self.mttf_hours is None:
            return False
        return random.random() < 10.0 / (self.mttf_hours * 3600.0)

    def crash(self, state: SimState) -> None:
        state.data["crashed"] = True
        state.save()
        self._console_lines(OOPS)

    def _console_lines(self, lines: Sequence[str]) -> None:
        self.console_file.parent.mkdir(parents=True, exist_ok=True)
        with self.console_file.open("a") as handle:
            handle.writelines(f"[{time.monotonic():12.6f}] {line}\n" for line in lines)


def register() -> None:
    HOST_KINDS["sim"] = SimHost
