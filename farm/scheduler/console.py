# SPDX-License-Identifier: Apache-2.0
"""The host's kernel console: tailed into the store and through the crash parser.

Each soak step reads the bytes written since the stored offset (only whole lines are
consumed, so a line cut by the read is taken next time), stores them as console lines
of the run, and reparses a window of recent lines with farm.detect.crash. Parsing a
window instead of keeping a CrashStream in memory makes the step stateless: any worker
can take the next step. A crash is recorded once per run and title.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.detect import crash as crash_parser
from farm.hosts.base import Console
from farm.store.runs import Crash
from farm.store.samples import ConsoleLine

# Lines kept in the reparse window: a whole oops with its stack fits many times over.
WINDOW_LINES = 400
MAX_READ = 4 << 20
_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")  # printk's "[   74.264500] "


@dataclass(frozen=True)
class ConsoleChunk:
    lines: list[str]
    offset: int  # the offset to read from next time


def read_new(console: Console, offset: int) -> ConsoleChunk:
    """Whole lines written since ``offset``. A console that shrank (a VM restarted
    with a fresh serial log) is read again from its start."""
    data, end = console.read(offset)
    offset = end - len(data)  # not the asked offset when the console started over
    data = data[:MAX_READ]
    cut = data.rfind(b"\n") + 1
    text = data[:cut].decode(errors="replace")
    lines = [line.rstrip("\r") for line in text.split("\n")[:-1]] if cut else []
    return ConsoleChunk(lines, offset + cut)


def store_lines(session: Session, *, run_id: int, host: str, lines: list[str]) -> None:
    now = time.time()
    session.add_all(ConsoleLine(run_id=run_id, host=host, ts=now, line=line) for line in lines)


def scan(session: Session, *, run_id: int, host: str, scan_from: int) -> tuple[list[Crash], int]:
    """Parse the run's console lines from ``scan_from``; new crashes and the next start."""
    rows = session.execute(
        select(ConsoleLine.id, ConsoleLine.line)
        .where(ConsoleLine.run_id == run_id, ConsoleLine.id >= scan_from)
        .order_by(ConsoleLine.id)
    ).all()
    if not rows:
        return [], scan_from
    known = set(session.scalars(select(Crash.title).where(Crash.run_id == run_id)))
    found: list[Crash] = []
    for parsed in crash_parser.parse("\n".join(line for _, line in rows)):
        first = rows[parsed.start_line - 1][1] if 0 < parsed.start_line <= len(rows) else ""
        if parsed.title in known:
            continue
        known.add(parsed.title)
        found.append(
            Crash(
                run_id=run_id,
                host=host,
                title=parsed.title,
                kind=str(parsed.kind),
                signature=parsed.signature,
                frames=list(parsed.frames),
                report=parsed.report,
                corrupted=parsed.corrupted,
                alt_titles=list(parsed.alt_titles),
                source="console",
                uptime_seconds=_uptime(first),
            )
        )
    session.add_all(found)
    next_from = rows[max(0, len(rows) - WINDOW_LINES)][0]
    return found, next_from


def _uptime(line: str) -> float | None:
    """The kernel's uptime when it printed ``line``, if the console has timestamps."""
    match = _STAMP.match(line)
    return float(match[1]) if match else None


def tail(session: Session, run_id: int, lines: int = 50) -> list[str]:
    """The last console lines of a run: the evidence quoted by a hang verdict."""
    newest = select(ConsoleLine.line).where(ConsoleLine.run_id == run_id)
    rows = session.scalars(newest.order_by(ConsoleLine.id.desc()).limit(lines)).all()
    return list(reversed(rows))


def line_count(session: Session, run_id: int) -> int:
    count = session.scalar(select(func.count()).where(ConsoleLine.run_id == run_id))
    return int(count or 0)


def crash_titles(session: Session, run_id: int) -> list[str]:
    return list(session.scalars(select(Crash.title).where(Crash.run_id == run_id)))
