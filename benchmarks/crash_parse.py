# SPDX-License-Identifier: Apache-2.0
"""Throughput of the crash parser on a large console log (target: >= 20 MB/s).

--log synthetic (default): every syzkaller corpus report (headers removed) spread over
ordinary console traffic until it reaches --size megabytes, like a long soak's serial log.
--log real: the real-world consoles of tests/fixtures/consoles (laptop and server dmesgs,
journals, crashes on six architectures) concatenated until --size megabytes.
--log dense: only the real-world crash consoles, concatenated: a log dense with crashes.
Prints the figures; --json for scripts.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

from farm.detect.crash import CrashStream, parse

CORPUS = Path(__file__).resolve().parents[1] / "tests/fixtures/corpus/syzkaller-linux/report"
CONSOLES = Path(__file__).resolve().parents[1] / "tests/fixtures/consoles"
NOISE = (
    "virtio_net virtio0 eth0: renamed from eth0",
    "EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.",
    'audit: type=1400 audit({t}:{n}): avc:  denied  {{ read }} for  pid={n} comm="stress-ng"',
    "systemd[1]: Started soak-load.service - farm soak load {n}.",
    "TCP: request_sock_TCP: Possible SYN flooding on port 22. Sending cookies.",
    "perf: interrupt took too long ({n} > {n}), lowering kernel.perf_event_max_sample_rate",
    "usb 1-1: new high-speed USB device number {n} using xhci_hcd",
    "EXT4-fs (vda): re-mounted. Quota mode: none.",
    "random: crng init done",
)


def build_log(megabytes: int) -> str:
    rng = random.Random(42)
    reports = [
        p.read_bytes().partition(b"\n\n")[2].decode("utf-8", errors="replace")
        for p in sorted(CORPUS.iterdir())
        if not p.read_bytes().startswith(b"TITLE: \n")
    ]
    parts: list[str] = []
    size, clock = 0, 0.0
    while size < megabytes * 1_000_000:
        noise = []
        for _ in range(2000):
            clock += rng.random()
            template = rng.choice(NOISE)
            noise.append(
                f"[{clock:12.6f}] " + template.format(t=int(clock), n=rng.randint(1, 9999))
            )
        chunk = "\n".join(noise) + "\n" + rng.choice(reports)
        parts.append(chunk)
        size += len(chunk)
    return "".join(parts)


def real_log(megabytes: int, *, crashes_only: bool) -> str:
    """Real consoles concatenated (sorted by name, so the log is the same every run)."""
    files = sorted(CONSOLES.glob("*.log"))
    if crashes_only:
        files = [f for f in files if not f.name.startswith("clean_")]
    texts = [f.read_bytes().decode("utf-8", errors="replace") for f in files]
    parts: list[str] = []
    size = 0
    while size < megabytes * 1_000_000:
        for text in texts:
            parts.append(text if text.endswith("\n") else text + "\n")
            size += len(text)
    return "".join(parts)


def measure(megabytes: int, log: str = "synthetic") -> dict[str, float | int | bool]:
    if log == "synthetic":
        text = build_log(megabytes)
    else:
        text = real_log(megabytes, crashes_only=log == "dense")
    mb = len(text.encode()) / 1e6
    # CPU time as well as wall time: the figure should not depend on the neighbours' load.
    wall, cpu = time.perf_counter(), time.process_time()
    crashes = parse(text)
    batch_wall, batch_cpu = time.perf_counter() - wall, time.process_time() - cpu
    stream = CrashStream()
    wall, cpu = time.perf_counter(), time.process_time()
    streamed = [c for line in io.StringIO(text, newline="\n") for c in stream.feed(line)]
    streamed += stream.flush()
    stream_wall, stream_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "log_mb": round(mb, 1),
        "crashes": len(crashes),
        "batch_mb_per_s": round(mb / batch_wall, 1),
        "batch_mb_per_cpu_s": round(mb / batch_cpu, 1),
        "stream_mb_per_s": round(mb / stream_wall, 1),
        "stream_mb_per_cpu_s": round(mb / stream_cpu, 1),
        "stream_agrees_with_batch": sorted(streamed, key=lambda c: c.start_line) == crashes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=50, help="log size in MB (default 50)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--log", choices=("synthetic", "real", "dense"), default="synthetic")
    args = parser.parse_args()
    result = measure(args.size, args.log)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:16} {value}")


if __name__ == "__main__":
    main()
