# SPDX-License-Identifier: Apache-2.0
"""How fast intake reads a big series: a 500-patch mbox made by real git format-patch.

Builds a repository with N commits (git fast-import), formats them with
``git format-patch --cover-letter --thread``, mixes in review replies, then times
reading the mbox (split + header/body decoding) and grouping it into a series.

    .venv/bin/python benchmarks/intake_parse.py [--patches 500] [--repeat 5] [--json]

``--corpus`` instead scores intake on the real-mail corpus (tests/fixtures/mail): the
share of files whose answer is right, per category, and the time to read them all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.git import git
from farm.intake.mbox import read_mails
from farm.intake.series import group_series
from tests.intake.realmail import expectations, judge, table

REPLY = (
    "From r@example.net Wed Nov 15 10:00:00 2023\nFrom: R <r@example.net>\n"
    "Subject: Re: [PATCH {n}/{total}] bench: change {n}\nMessage-ID: <re-{n}@example.net>\n\n"
    "> -line {n}\n\nReviewed-by: R <r@example.net>\n\n"
)


def make_mbox(tmp: Path, patches: int) -> Path:
    repo = tmp / "repo"
    git(tmp, "init", "--quiet", str(repo))
    stream = []
    mark = 0
    for n in range(patches + 1):
        body = "".join(f"line {i} of file {n % 50} rev {n}\n" for i in range(40))
        message = "base" if n == 0 else f"bench: change {n}\n\nWhy change {n}.\n"
        stream.append(
            f"commit refs/heads/master\nmark :{n + 1}\n"
            f"committer Bench <bench@example.org> {1700000000 + n} +0000\n"
            f"data {len(message.encode())}\n{message}\n"
            + (f"from :{mark}\n" if mark else "")
            + f"M 100644 inline src/file{n % 50}.c\ndata {len(body.encode())}\n{body}\n"
        )
        mark = n + 1
    git(repo, "fast-import", "--quiet", input="".join(stream).encode())
    out = tmp / "out"
    git(
        repo,
        "format-patch",
        "--quiet",
        "--cover-letter",
        "--thread",
        "-o",
        str(out),
        f"--base=master~{patches}",
        f"master~{patches}..master",
    )
    mbox = tmp / "series.mbox"
    with mbox.open("wb") as handle:
        for n, file in enumerate(sorted(out.iterdir())):
            handle.write(file.read_bytes())
            if n % 10 == 5:
                handle.write(REPLY.format(n=n, total=patches).encode())
    return mbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--corpus", action="store_true", help="score the real-mail corpus")
    args = parser.parse_args()
    if args.corpus:
        corpus(args.json)
        return
    with tempfile.TemporaryDirectory(prefix="farm-intake-bench-") as tmp:
        start = time.perf_counter()
        mbox = make_mbox(Path(tmp), args.patches)
        setup = time.perf_counter() - start
        read_times, group_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            mails = read_mails(mbox)
            t1 = time.perf_counter()
            series = group_series(mails)
            read_times.append(t1 - t0)
            group_times.append(time.perf_counter() - t1)
        size = mbox.stat().st_size
    total = [r + g for r, g in zip(read_times, group_times, strict=True)]
    figures = {
        "patches": len(series.patches),
        "messages": len(mails),
        "mbox_bytes": size,
        "setup_seconds": round(setup, 3),
        "read_seconds_median": round(statistics.median(read_times), 4),
        "group_seconds_median": round(statistics.median(group_times), 4),
        "total_seconds_median": round(statistics.median(total), 4),
        "total_seconds_max": round(max(total), 4),
        "messages_per_second": round(len(mails) / statistics.median(total)),
        "megabytes_per_second": round(size / 1e6 / statistics.median(total), 1),
        "repeat": args.repeat,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"intake parse: {figures['patches']} patches, {figures['messages']} messages, "
        f"{size / 1e6:.1f} MB (setup {setup:.1f}s, not timed)"
    )
    print(f"  read   median {figures['read_seconds_median'] * 1000:.0f} ms")
    print(f"  group  median {figures['group_seconds_median'] * 1000:.0f} ms")
    print(
        f"  total  median {figures['total_seconds_median'] * 1000:.0f} ms, "
        f"max {figures['total_seconds_max'] * 1000:.0f} ms over {args.repeat} runs "
        f"({figures['messages_per_second']} messages/s, {figures['megabytes_per_second']} MB/s)"
    )


def corpus(as_json: bool) -> None:
    start = time.perf_counter()
    verdicts = [judge(e) for e in expectations()]
    seconds = time.perf_counter() - start
    rows = table(verdicts)
    if as_json:
        figures = {c: {"right": r, "files": n} for c, r, n in rows}
        print(json.dumps({"categories": figures, "seconds": round(seconds, 3)}, indent=2))
        return
    print(f"intake on the real-mail corpus ({len(verdicts)} files, {seconds:.2f} s):")
    print(f"  {'category':28} {'right':>5} {'files':>5} {'%':>6}")
    for category, right, files in rows:
        print(f"  {category:28} {right:5d} {files:5d} {100 * right / files:6.1f}")
    for verdict in verdicts:
        if not verdict.right:
            print(f"  wrong: {verdict.path}: {verdict.why}")


if __name__ == "__main__":
    main()
