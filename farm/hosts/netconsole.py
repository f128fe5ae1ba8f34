# SPDX-License-Identifier: Apache-2.0
"""netconsole: kernel messages sent over UDP by hosts without a serial port.

``farm netconsole`` listens on the controller and appends each host's messages to
``<data_dir>/hosts/<name>/netconsole.log``; the console kind ``netconsole`` reads that
file like a serial-file console, so crash detection does not know the difference.

A datagram belongs to the host whose inventory ``address`` it comes from and whose
``[hosts.console] port`` (default: the listener's port) it was sent to; anything else
is counted and dropped. File names come from the inventory, never from a packet.
The kernel's extended format (``6,123,4567890,-;message``, enabled by ``+`` in
``netconsole=``) is written like a serial console line, ``[    4.567890] message``;
plain datagrams are written as they come.

A host that sends without end cannot fill the disk: past ``[hosts.console] max_log_mb``
the log is renamed ``netconsole.log.1`` (replacing the older one) and a new log starts.
Console offsets count every byte ever written, and ``netconsole.log.base`` says where
the current file starts, so a reader keeps its place across a rotation.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from farm.config import HostConfig
from farm.errors import UserError
from farm.hosts import keys
from farm.hosts.console import SerialFileConsole, host_dir

log = logging.getLogger(__name__)

DEFAULT_PORT = 6666
# QEMU user-mode networking: the guest's address, and the one that reaches the
# controller's loopback (send there, and datagrams come from 127.0.0.1).
QEMU_GUEST_IP = "10.0.2.15"
QEMU_CONTROLLER_IP = "10.0.2.2"
_EXTENDED = re.compile(rb"^(\d+),(\d+),(\d+),([^;]*);")
_FRAGMENT = re.compile(rb"ncfrag=(\d+)/(\d+)")
_BATCH = 256
_RCVBUF = 4 << 20  # the kernel caps it at net.core.rmem_max
_DEVICE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")


def netconsole_path(config: HostConfig, data_dir: Path) -> Path:
    return config.console.path or host_dir(config, data_dir) / "netconsole.log"


def _rotated(log: Path) -> Path:
    return log.with_name(f"{log.name}.1")


def _base_file(log: Path) -> Path:
    return log.with_name(f"{log.name}.base")


def log_base(log: Path) -> int:
    """The console offset of the first byte of ``log``: all bytes rotated away before."""
    try:
        return int(_base_file(log).read_text())
    except (FileNotFoundError, ValueError):
        return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, start: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            return handle.read()
    except FileNotFoundError:
        return b""


class NetconsoleConsole(SerialFileConsole):
    """The file ``farm netconsole`` appends a host's messages to, and the one rotated
    before it. Reads hold the lock the listener rotates under."""

    def __init__(self, config: HostConfig, data_dir: Path) -> None:
        super().__init__(config, data_dir)
        self.path = netconsole_path(config, data_dir)

    def read(self, offset: int) -> tuple[bytes, int]:
        with keys.locked(self.path):
            base, size = log_base(self.path), _size(self.path)
            if base <= offset <= base + size:
                data = _read_from(self.path, offset - base)
                return data, offset + len(data)
            if offset > base + size:  # truncated by hand: start over
                data = _read_from(self.path, 0)
                return data, base + len(data)
            older = _size(self._rotated)  # rotated since the last read: its rest first
            start = max(offset, base - older)  # bytes before .1 are gone
            data = _read_from(self._rotated, start - (base - older)) + _read_from(self.path, 0)
            return data, start + len(data)

    def end(self) -> int:
        with keys.locked(self.path):
            return log_base(self.path) + _size(self.path)

    @property
    def _rotated(self) -> Path:
        return _rotated(self.path)


def netconsole_param(host: HostConfig, controller_ip: str, port: int = DEFAULT_PORT) -> str:
    """The kernel's ``netconsole=`` argument that sends ``host``'s messages, in the
    extended format, to ``farm netconsole`` on ``controller_ip:port``.

    The source address is the host's own when its inventory address is an IPv4
    literal (needed when netconsole starts before the network is configured), the
    guest's for a QEMU host or one reached on loopback (a VM behind a forwarded port,
    like the disk-booted test VM); the interface is ``[hosts.console] device`` or the
    kernel's default, eth0. The target MAC is left out: netconsole broadcasts.
    """
    try:
        target = ipaddress.IPv4Address(controller_ip)
    except ValueError as exc:
        raise UserError(
            f"netconsole needs the controller's IPv4 address, not {controller_ip!r}"
        ) from exc
    device = host.console.device or ""
    if device and not _DEVICE.match(device):
        raise UserError(f"host {host.name}: console.device {device!r} is not an interface name")
    try:
        address: ipaddress.IPv4Address | None = ipaddress.IPv4Address(host.address)
    except ValueError:
        address = None  # a host name: the kernel takes the interface's address
    if host.kind == "qemu" or (address is not None and address.is_loopback):
        source = QEMU_GUEST_IP  # reached through a forwarded port: a user-mode guest
    else:
        source = str(address or "")
    tgt_port = host.console.port or port
    return f"netconsole=+@{source}/{device},{tgt_port}@{target}/"


def render(datagram: bytes, *, continues: bool) -> tuple[bytes, bool]:
    """The console bytes of one datagram, and whether the next one continues its line
    (a fragmented extended message)."""
    match = _EXTENDED.match(datagram)
    if match is None:
        return datagram, False
    body = datagram[match.end() :].split(b"\n", 1)[0]  # dictionary lines follow
    fragment = _FRAGMENT.search(match.group(4))
    offset, total = (int(fragment.group(1)), int(fragment.group(2))) if fragment else (0, 0)
    usec = int(match.group(3))
    start = offset == 0
    prefix = f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] ".encode() if start else b""
    more = offset + len(body) < total
    return (b"\n" if continues and start else b"") + prefix + body + (b"" if more else b"\n"), more


@dataclass
class HostStats:
    datagrams: int = 0
    bytes: int = 0
    last: float = 0.0


@dataclass
class _Sink:
    name: str
    path: Path
    limit: int
    handle: BinaryIO | None = None
    size: int = 0
    continues: bool = False

    def write(self, text: bytes) -> None:
        if self.handle is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.handle = self.path.open("ab")
            self.size = os.fstat(self.handle.fileno()).st_size
        if self.size and self.size + len(text) > self.limit:
            self._rotate()
        assert self.handle is not None
        self.handle.write(text)
        self.size += len(text)

    def _rotate(self) -> None:
        """The log becomes ``.1`` and a new one starts where it ended."""
        assert self.handle is not None
        with keys.locked(self.path):
            self.handle.close()
            start = log_base(self.path) + _size(self.path)
            os.replace(self.path, _rotated(self.path))
            keys.write_atomic(_base_file(self.path), f"{start}\n".encode())
            self.handle = self.path.open("ab")
            self.size = 0


class Listener:
    """UDP sockets for the netconsole hosts of an inventory; :meth:`serve` until stopped."""

    def __init__(
        self, hosts: Iterable[HostConfig], data_dir: Path, *, bind: str, port: int
    ) -> None:
        self.bind, self.port = bind, port
        self.sinks: dict[tuple[str, int], _Sink] = {}
        for host in hosts:
            if host.console.kind != "netconsole":
                continue
            key = (_resolve(host.address), host.console.port or port)
            if key in self.sinks:
                raise UserError(
                    f"hosts {self.sinks[key].name} and {host.name} both send netconsole from "
                    f"{key[0]} to port {key[1]}: farm could not tell them apart",
                    hint="give each its own [hosts.console] port",
                )
            limit = host.console.max_log_mb << 20
            self.sinks[key] = _Sink(host.name, netconsole_path(host, data_dir), limit)
        if not self.sinks:
            raise UserError(
                "no host has a netconsole console",
                hint='set [hosts.console] kind = "netconsole" for the hosts that send it',
            )
        self.stats = {sink.name: HostStats() for sink in self.sinks.values()}
        self.unknown = 0
        self._selector = selectors.DefaultSelector()
        for listen_port in sorted({p for _, p in self.sinks}):
            self._selector.register(self._socket(listen_port), selectors.EVENT_READ, listen_port)

    def _socket(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind, port))
        except OSError as exc:
            sock.close()
            self.close()
            raise UserError(f"cannot listen on UDP {self.bind}:{port}: {exc.strerror}") from exc
        # A crash dump is a burst: room for it while the previous one is written.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.setblocking(False)
        return sock

    @property
    def ports(self) -> list[int]:
        return [key.data for key in self._selector.get_map().values()]

    def serve(
        self, stop: threading.Event, progress: Callable[[str, HostStats], None] | None = None
    ) -> None:
        """Receive until ``stop`` is set; ``progress`` is called after each datagram."""
        while not stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                for _ in range(_BATCH):  # drain the burst, then flush once
                    try:
                        data, (address, _) = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    name = self.receive(address, key.data, data, flush=False)
                    if name is not None and progress is not None:
                        progress(name, self.stats[name])
            self._flush()

    def receive(self, address: str, port: int, data: bytes, *, flush: bool = True) -> str | None:
        """Append one datagram to its host's file; the host's name, None if dropped."""
        sink = self.sinks.get((address, port))
        if sink is None:
            self.unknown += 1
            if self.unknown == 1 or self.unknown % 1000 == 0:
                log.warning("netconsole: dropped %d datagram(s) from unknown sources, "
                            "latest %s to port %d", self.unknown, address, port)  # fmt: skip
            return None
        text, sink.continues = render(data, continues=sink.continues)
        sink.write(text)
        if flush and sink.handle is not None:
            sink.handle.flush()
        stats = self.stats[sink.name]
        stats.datagrams += 1
        stats.bytes += len(data)
        stats.last = time.time()
        return sink.name

    def _flush(self) -> None:
        """Readers tail the files while the hosts are still alive: no data waits long."""
        for sink in self.sinks.values():
            if sink.handle is not None:
                sink.handle.flush()

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
        for sink in self.sinks.values():
            if sink.handle is not None:
                sink.handle.close()
                sink.handle = None


def _resolve(address: str) -> str:
    """The IPv4 address datagrams of ``address`` come from."""
    try:
        return socket.gethostbyname(address)
    except OSError as exc:
        raise UserError(f"cannot resolve host address {address!r}: {exc}") from exc
