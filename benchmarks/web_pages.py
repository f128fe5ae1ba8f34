# SPDX-License-Identifier: Apache-2.0
"""The web view's pages over a big store: server time per page (target < 300 ms for
the series and runs lists with 10,000 runs).

Fills a fresh SQLite store with --series series of 5 patches and --runs runs spread
over them and 8 hosts (finished ones with findings, some soaking), one run with
--samples samples and console lines, then renders each page --repeat times in
process (ASGI, no network: the time is the server's: queries, templates, SVG).

    .venv/bin/python benchmarks/web_pages.py --runs 10000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from farm.api import create_app
from farm.ending import Cause, Finding, RunEnding, Verdict
from farm.store import Store
from farm.store.runs import Run, RunKind, RunState
from farm.store.samples import ConsoleLine, KeyCache, Reading, add_samples
from farm.store.series import Patch, Series

TOKEN = "benchmark-token-0123456789abcdef"
HOSTS = [f"host{i}" for i in range(8)]


def fill(store: Store, series: int, runs: int, samples: int, rng: random.Random) -> int:
    """The store's rows; the id of the run that has samples and a console."""
    with store.session() as db:
        for s in range(series):
            db.add(
                Series(
                    title=f"mm: series {s}", total=5, source="bench.mbox", content_hash=f"h{s}",
                    patches=[Patch(index=i, subject=f"mm: patch {i} of series {s}",
                                   full_subject=f"[PATCH {i}/5] mm: patch {i}",
                                   message_id=f"<{s}.{i}@bench>", author="Dev <d@x>", raw=b"")
                             for i in range(1, 6)],
                )
            )  # fmt: skip
        db.flush()
        fail = RunEnding(
            findings=[Finding(cause=Cause.COUNTER, text="counter nr_free_pages: grows",
                              counter="nr_free_pages", rule="returns-to-zero", value=42)]
        )  # fmt: skip
        rows = []
        for i in range(runs):
            done = i < runs - 20
            verdict = (Verdict.FAIL if rng.random() < 0.2 else Verdict.PASS) if done else None
            rows.append({
                "kind": RunKind.PATCHED if i % 3 else RunKind.BASELINE,
                "series_id": 1 + i % series, "upto": 5 if i % 3 else 0, "commit": f"{i:040x}",
                "host": HOSTS[i % len(HOSTS)], "load": "idle-loop", "soak_seconds": 43200.0,
                "state": RunState.DONE if done else RunState.SOAKING, "verdict": verdict,
                "ending": fail if verdict == Verdict.FAIL else RunEnding(),
                "kernel_release": "6.1.0-farm",
            })  # fmt: skip
        db.execute(insert(Run), rows)
    target = runs  # the newest run: soaking, with samples and console
    keys = KeyCache()
    start = time.time() - samples * 10
    with store.session() as db:
        batch = [
            (HOSTS[target % len(HOSTS)], target,
             Reading(ts=start + 10 * k, phase="soak", boot_id="b", uptime=60.0 + 10 * k,
                     tainted=0, vmstat={f"v{j}": k * j for j in range(200)} | {
                         "nr_free_pages": 1000 + k, "nr_zspages": k % 7},
                     meminfo={"MemFree": 1 << 30, "MemTotal": 1 << 31}))
            for k in range(samples)
        ]  # fmt: skip
        add_samples(db, keys, batch)
        db.add_all(
            ConsoleLine(run_id=target, host=HOSTS[0], ts=start + k, line=f"[{k}] console line")
            for k in range(1000)
        )
    return target


def measure(client: TestClient, path: str, repeat: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client.get(path, headers=headers).raise_for_status()  # warm: templates compiled
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(path, headers=headers).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--samples", type=int, default=4320, help="12 h at 10 s")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'farm.db'}")
        began = time.perf_counter()
        target = fill(store, args.series, args.runs, args.samples, random.Random(1))
        filled = time.perf_counter() - began
        pages = [
            "/series", "/series?offset=200", "/series/1", "/runs", "/runs?state=done",
            "/runs?host=host3", "/runs?offset=5000", f"/runs/{target}", "/hosts",
        ]  # fmt: skip
        with TestClient(create_app(store, TOKEN)) as client:
            results: dict[str, Any] = {p: measure(client, p, args.repeat) for p in pages}
        store.dispose()
    report = {"runs": args.runs, "series": args.series, "samples": args.samples,
              "fill_seconds": round(filled, 1), "pages": results}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{args.runs} runs, {args.series} series, {args.samples} samples on run {target} "
        f"(filled in {filled:.1f} s); server time per page over {args.repeat} requests:"
    )
    for path, r in results.items():
        print(f"  {path:24} median {r['median_ms']:7.1f} ms  p90 {r['p90_ms']:7.1f} ms  "
              f"max {r['max_ms']:7.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
