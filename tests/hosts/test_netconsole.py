# SPDX-License-Identifier: Apache-2.0
"""`farm netconsole` receiving real UDP datagrams, and the console kind that reads them.

The listener runs as the real command in a subprocess; datagrams come from real
sockets bound to loopback addresses (127.0.0.1 is a host of the inventory, 127.0.0.2
is a stranger). The QEMU test boots the soak kernel with farm's netconsole= argument
and crashes it: the panic arrives over UDP through QEMU's user-mode network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.build import KernelArtifacts
from farm.config import ConsoleConfig, HostConfig, load_config
from farm.detect.crash import first_title
from farm.errors import UserError
from farm.hosts import HostUnreachable, get_host
from farm.hosts.console import tail
from farm.hosts.netconsole import (
    QEMU_CONTROLLER_IP,
    Listener,
    NetconsoleConsole,
    netconsole_param,
)
from farm.hosts.qemu import QemuVm

PANIC = b"6,812,4567890,-;Kernel panic - not syncing: sysrq triggered crash\n"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def send(datagrams: list[bytes], port: int, source: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))


def wait_for(path: Path, needle: bytes, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if needle in data:
            return data
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never reached {path}")


@pytest.fixture
def farm_toml(tmp_path: Path) -> Path:
    """Two netconsole hosts on one address, told apart by their ports; one serial host."""
    path = tmp_path / "farm.toml"
    ports = free_udp_port(), free_udp_port()
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[[hosts]]\nname = "laptop"\nkind = "ssh"\naddress = "127.0.0.1"\n'
        f'[hosts.console]\nkind = "netconsole"\nport = {ports[0]}\n'
        f'[[hosts]]\nname = "ws1"\nkind = "ssh"\naddress = "localhost"\n'
        f'[hosts.console]\nkind = "netconsole"\nport = {ports[1]}\n'
        f'[[hosts]]\nname = "serial"\nkind = "ssh"\naddress = "127.0.0.1"\n'
    )
    return path


@pytest.fixture
def listening(farm_toml: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "FARM_CONFIG": str(farm_toml)}
    process = subprocess.Popen(
        [sys.executable, "-m", "farm", "netconsole", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()  # printed once the sockets are bound
        assert "netconsole: 127.0.0.1 UDP" in banner, banner + process.stderr.read()
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_datagrams_land_in_their_hosts_logs_and_strangers_are_dropped(
    farm_toml: Path, listening: subprocess.Popen[str]
) -> None:
    config = load_config(farm_toml)
    laptop, ws1 = config.host("laptop"), config.host("ws1")
    assert laptop.console.port and ws1.console.port
    send([b"6,1,1000,-;netconsole: network logging started\n", PANIC], laptop.console.port)
    send([b"[    2.000000] plain line from ws1\n"], ws1.console.port)
    send([b"0,1,1,-;Kernel panic - forged by a stranger\n"], laptop.console.port, "127.0.0.2")
    log_dir = config.data_dir / "hosts"
    laptop_log = wait_for(log_dir / "laptop" / "netconsole.log", b"sysrq triggered crash")
    ws1_log = wait_for(log_dir / "ws1" / "netconsole.log", b"plain line")

    assert laptop_log == (
        b"[    0.001000] netconsole: network logging started\n"
        b"[    4.567890] Kernel panic - not syncing: sysrq triggered crash\n"
    )
    assert ws1_log == b"[    2.000000] plain line from ws1\n"
    assert sorted(p.name for p in log_dir.iterdir()) == ["laptop", "ws1"]

    listening.send_signal(signal.SIGTERM)
    out, err = listening.communicate(timeout=20)
    assert listening.returncode == 0, err
    summary = json.loads(out)
    assert summary["unknown_datagrams"] == 1
    assert summary["hosts"]["laptop"]["datagrams"] == 2
    assert summary["hosts"]["ws1"]["datagrams"] == 1


def test_the_netconsole_console_kind_reads_the_log_and_finds_the_crash(
    farm_toml: Path, listening: subprocess.Popen[str]
) -> None:
    config = load_config(farm_toml)
    console = get_host(config, "laptop").console
    start = console.end()
    assert start == 0
    send([PANIC], config.host("laptop").console.port or 0)
    wait_for(config.data_dir / "hosts" / "laptop" / "netconsole.log", b"panic")
    data, offset = console.read(start)
    assert offset == len(data) > 0
    assert first_title(tail(console, start)) == "kernel panic: sysrq triggered crash"


def test_a_fragmented_extended_message_is_one_line(tmp_path: Path) -> None:
    host = HostConfig(
        name="laptop",
        kind="ssh",
        address="127.0.0.1",
        console=ConsoleConfig(kind="netconsole", port=free_udp_port()),
    )
    listener = Listener([host], tmp_path, bind="127.0.0.1", port=6666)
    try:
        body = b"BUG: unable to handle page fault for address: 0000000000001234"
        for offset in range(0, len(body), 20):
            header = f"1,7,2000000,-,ncfrag={offset}/{len(body)};".encode()
            listener.receive(
                "127.0.0.1", host.console.port or 0, header + body[offset : offset + 20]
            )
        listener.receive("127.0.0.1", host.console.port or 0, b"4,8,2000001,-;next\n SUBSYSTEM=x\n")
    finally:
        listener.close()
    log = (tmp_path / "hosts" / "laptop" / "netconsole.log").read_bytes()
    assert log == b"[    2.000000] " + body + b"\n[    2.000001] next\n"


def test_a_log_is_capped_and_a_reader_keeps_its_place_across_rotations(tmp_path: Path) -> None:
    capped = ConsoleConfig(kind="netconsole", port=free_udp_port(), max_log_mb=1)
    host = HostConfig(name="laptop", kind="ssh", address="127.0.0.1", console=capped)
    listener = Listener([host], tmp_path, bind="127.0.0.1", port=6666)
    console = NetconsoleConsole(host, tmp_path)
    log = tmp_path / "hosts" / "laptop" / "netconsole.log"
    sent: list[bytes] = []

    def burst(tag: str, count: int) -> bytes:  # 50 kB lines, as a crash dump arrives
        lines = [f"{tag}{i} ".encode() + b"x" * 50_000 + b"\n" for i in range(count)]
        for line in lines:
            listener.receive("127.0.0.1", capped.port or 0, line)
        sent.extend(lines)
        return b"".join(lines)

    try:
        first = burst("a", 12)  # 600 kB
        assert console.read(console.end() - len(first)) == (first, len(first))
        place = len(first)
        later = burst("b", 6) + burst("c", 6)  # 1.2 MB in all: rotated after c1
        assert log.stat().st_size <= 1 << 20 and log.with_name("netconsole.log.1").exists()
        assert console.read(place) == (later, place + len(later)), "nothing lost, no repeats"
        place += len(later)
        last = burst("d", 25)  # two more rotations: only one old file is kept
        assert console.read(place) == (last, console.end())
        assert console.end() == sum(map(len, sent))
        kept, end = console.read(0)  # older bytes are gone: from the oldest kept on
        assert b"".join(sent).endswith(kept) and end == console.end()
        assert sorted(p.name for p in log.parent.glob("netconsole.log*")) == [
            "netconsole.log", "netconsole.log.1", "netconsole.log.base", "netconsole.log.lock"
        ]  # fmt: skip
    finally:
        listener.close()


def test_two_hosts_the_listener_cannot_tell_apart_are_refused(tmp_path: Path) -> None:
    console = ConsoleConfig(kind="netconsole")
    hosts = [
        HostConfig(name=n, kind="ssh", address="127.0.0.1", console=console) for n in ("a", "b")
    ]
    with pytest.raises(UserError, match=r"both send netconsole from 127\.0\.0\.1") as refused:
        Listener(hosts, tmp_path, bind="127.0.0.1", port=free_udp_port())
    assert refused.value.hint == "give each its own [hosts.console] port"


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        host = HostConfig(
            name="a", kind="ssh", address="127.0.0.1", console=ConsoleConfig(kind="netconsole")
        )
        with pytest.raises(UserError, match=f"cannot listen on UDP 127.0.0.1:{port}"):
            Listener([host], tmp_path, bind="127.0.0.1", port=port)


def test_the_kernel_argument_names_the_host_and_the_listener() -> None:
    metal = HostConfig(
        name="ws1", kind="ssh", address="192.0.2.10",
        console=ConsoleConfig(kind="netconsole", device="enp0s31f6", port=6667),
    )  # fmt: skip
    assert netconsole_param(metal, "192.0.2.1", 6666) == (
        "netconsole=+@192.0.2.10/enp0s31f6,6667@192.0.2.1/"
    )
    named = HostConfig(name="ws2", kind="ssh", address="ws2.lab")
    assert netconsole_param(named, "192.0.2.1", 6666) == "netconsole=+@/,6666@192.0.2.1/"
    vm = HostConfig(name="laptop", kind="qemu")
    assert netconsole_param(vm, QEMU_CONTROLLER_IP, 7000) == (
        "netconsole=+@10.0.2.15/,7000@10.0.2.2/"
    )
    forwarded = HostConfig(name="diskvm", kind="ssh", address="127.0.0.1", port=2222)
    assert netconsole_param(forwarded, QEMU_CONTROLLER_IP, 6666) == (
        "netconsole=+@10.0.2.15/,6666@10.0.2.2/"
    )
    with pytest.raises(UserError, match=r"IPv4 address, not 'controller\.lab'"):
        netconsole_param(metal, "controller.lab", 6666)
    evil = HostConfig(
        name="ws3",
        kind="ssh",
        address="192.0.2.11",
        console=ConsoleConfig(kind="netconsole", device="eth0 init=/x"),
    )
    with pytest.raises(UserError, match="is not an interface name"):
        netconsole_param(evil, "192.0.2.1", 6666)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.kernel
def test_a_qemu_guest_panic_arrives_over_netconsole(
    tmp_path: Path, soak_kernel: KernelArtifacts
) -> None:
    port = free_udp_port()
    path = tmp_path / "farm.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[[hosts]]\nname = "laptop"\nkind = "qemu"\n'
        f'boot_timeout = 240\n[hosts.console]\nkind = "netconsole"\nport = {port}\n'
    )
    config = load_config(path)
    host = get_host(config, "laptop")
    listener = Listener(config.hosts, config.data_dir, bind="127.0.0.1", port=port)
    stop = threading.Event()
    thread = threading.Thread(target=listener.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        host.boot(soak_kernel, cmdline=netconsole_param(config.host("laptop"), QEMU_CONTROLLER_IP))
        log = config.data_dir / "hosts" / "laptop" / "netconsole.log"
        wait_for(log, b"netconsole: network logging started", timeout=30)
        with host.transport() as ssh, pytest.raises(HostUnreachable):
            ssh.run(["sh", "-c", "echo c > /proc/sysrq-trigger"], timeout=30)
        data = wait_for(log, b"Kernel panic", timeout=60)
    finally:
        stop.set()
        thread.join()
        listener.close()
        QemuVm(config.host("laptop"), config.data_dir).stop()
    assert first_title(data.decode(errors="replace")) is not None
    assert b"sysrq: Trigger a crash" in data
