# SPDX-License-Identifier: Apache-2.0
"""`farm netconsole` under a burst: how many datagrams per second it writes, and loses.

Starts the real command for --hosts netconsole hosts (all on 127.0.0.1, one UDP port
each), then sends --lines extended-format lines per host as fast as one socket per
host can, round robin: a crash dump of every host at once. Reports the rate at which
lines reached the hosts' logs and how many never did (UDP drops when the listener
falls behind its socket buffer).

    .venv/bin/python benchmarks/netconsole_rate.py --hosts 8 --lines 5000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(hosts: int, lines: int, settle: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="farm-netconsole-bench-"))
    ports = [free_udp_port() for _ in range(hosts)]
    toml = [f'data_dir = "{root / "data"}"']
    for index, port in enumerate(ports):
        toml += [
            f'[[hosts]]\nname = "h{index}"\nkind = "ssh"\naddress = "127.0.0.1"',
            f'[hosts.console]\nkind = "netconsole"\nport = {port}',
        ]
    (root / "farm.toml").write_text("\n".join(toml) + "\n")
    env = {**os.environ, "FARM_CONFIG": str(root / "farm.toml")}
    listener = subprocess.Popen(
        [sys.executable, "-m", "farm", "netconsole", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert listener.stderr is not None
    listener.stderr.readline()  # bound
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in ports]
    start = time.perf_counter()
    for seq in range(lines):
        line = f"4,{seq},{seq * 1000},-;BUG: benchmark line {seq:08d} of a long crash dump\n"
        for sock, port in zip(sockets, ports, strict=True):
            sock.sendto(line.encode(), ("127.0.0.1", port))
    sent = time.perf_counter() - start
    logs = [root / "data" / "hosts" / f"h{i}" / "netconsole.log" for i in range(hosts)]
    deadline = time.monotonic() + settle
    written, last_change, previous = 0, time.perf_counter(), -1
    while time.monotonic() < deadline and written < hosts * lines:
        written = sum(log.read_bytes().count(b"\n") if log.exists() else 0 for log in logs)
        if written != previous:
            previous, last_change = written, time.perf_counter()
        time.sleep(0.05)
    elapsed = last_change - start
    listener.send_signal(signal.SIGTERM)
    out, _ = listener.communicate(timeout=30)
    for sock in sockets:
        sock.close()
    summary = json.loads(out)
    return {
        "hosts": hosts,
        "lines_sent": hosts * lines,
        "lines_written": written,
        "lines_lost": hosts * lines - written,
        "send_seconds": round(sent, 3),
        "write_seconds": round(elapsed, 3),
        "lines_per_second": round(written / elapsed, 1) if elapsed > 0 else None,
        "datagrams_received": sum(h["datagrams"] for h in summary["hosts"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--lines", type=int, default=5000, help="lines per host")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for writes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.hosts, args.lines, args.settle)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['lines_written']}/{result['lines_sent']} lines written from {args.hosts} hosts "
        f"in {result['write_seconds']} s ({result['lines_per_second']} lines/s), "
        f"{result['lines_lost']} lost"
    )


if __name__ == "__main__":
    main()
