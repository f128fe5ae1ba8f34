# SPDX-License-Identifier: Apache-2.0
"""Machines simulated by network namespaces: one private network, no address outside it.

``Network(prefix, ["ctl", "wa", "wb"])`` makes one namespace per machine (``ip netns``):
the first holds a bridge with the network's first address (10.77.0.1/24), every other
one a veth end plugged into that bridge (10.77.0.2, .3, ...). Only the namespaces have
addresses on it; this machine's own network is untouched. Each namespace has its own
loopback, so a QEMU host's forwarded SSH port on 127.0.0.1 is private to its "machine".

``with network.inside("wb"):`` moves the calling thread into a namespace (setns(2)), so
the processes it starts, and the sockets it opens, are there; the thread returns to
where it was at the end. Filesystems are shared: Unix sockets and files cross.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def why_no_namespaces() -> str | None:
    """Why this process cannot make network namespaces, or None when it can."""
    probe = f"farm-probe-{os.getpid()}"
    try:
        done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    except FileNotFoundError:
        return "iproute2's ip is not installed"
    if done.returncode:
        return f"cannot create a network namespace (needs CAP_NET_ADMIN): {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


class Network:
    def __init__(self, prefix: str, machines: Sequence[str], subnet: str = "10.77.0") -> None:
        self.names = {m: f"{prefix}-{m}" for m in machines}
        self.addresses = {m: f"{subnet}.{i}" for i, m in enumerate(machines, start=1)}
        self.cidr = f"{subnet}.0/24"
        self.hub = machines[0]

    def create(self) -> None:
        hub = self.names[self.hub]
        for name in self.names.values():
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "addr", "add", f"{self.addresses[self.hub]}/24", "dev", "br0")
        _ip("-n", hub, "link", "set", "br0", "up")
        for machine, name in self.names.items():
            if machine == self.hub:
                continue
            port = f"to-{machine}"
            _ip("-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", name)  # fmt: skip
            _ip("-n", hub, "link", "set", port, "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{self.addresses[machine]}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")

    def delete(self) -> None:
        """Remove the namespaces (the processes started in them must be gone first)."""
        for name in self.names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    @contextlib.contextmanager
    def inside(self, machine: str) -> Iterator[None]:
        with (
            open("/proc/thread-self/ns/net") as back,
            open(f"/run/netns/{self.names[machine]}") as there,
        ):
            _setns(there.fileno())
            try:
                yield
            finally:
                _setns(back.fileno())


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)
