# SPDX-License-Identifier: Apache-2.0
"""The report's words, shared by the email (plain text) and markdown/html renderers."""

from __future__ import annotations

import textwrap

from farm.report.model import ReportInput
from farm.units import format_duration

WIDTH = 78


def verdict(ri: ReportInput) -> str:
    if ri.culprit is not None:
        return (
            f"The first bad patch is {ri.culprit.index:02d}/{ri.total:02d} "
            f'"{ri.culprit.subject}", with {ri.confidence:.1%} confidence.'
        )
    if ri.credible_set == [0]:
        return (
            f"No patch is to blame: the failure did not reproduce on this series "
            f"({ri.no_culprit:.1%})."
        )
    named = ", ".join("no culprit" if i == 0 else f"{i:02d}" for i in ri.credible_set)
    return f"The bisection is not conclusive; the culprit is among: {named}."


def what_regressed(ri: ReportInput) -> list[str]:
    if ri.regression_kind == "counter":
        line = f"Counter {ri.regression} regressed"
        lines = [line + (f": {ri.counter_summary}." if ri.counter_summary else ".")]
    else:
        lines = [f"Crash: {ri.regression}"]
        if ri.stack:
            lines += ["Call trace (top):", *(f"  {frame}" for frame in ri.stack[:8])]
    if ri.also_seen:
        lines += ["Also seen on the failing kernel: " + "; ".join(ri.also_seen) + "."]
    return lines


def uptime(hours: float) -> str:
    """11h35m, 1m42s: minutes-long demo runs and day-long soaks in one column."""
    seconds = hours * 3600
    return format_duration(seconds if seconds < 3600 else round(seconds / 60) * 60)


def run_table(ri: ReportInput) -> list[str]:
    rows = [f"{'kernel':<10} {'host':<16} {'boot':<12} {'uptime':>8}  outcome"]
    for r in ri.runs:
        kernel = "base" if r.kernel == 0 else f"+{r.kernel:02d}"
        rows.append(
            f"{kernel:<10} {r.host[:16]:<16} {r.boot[:12]:<12} {uptime(r.hours):>8}  {r.outcome}"
        )
    return rows


def wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, break_long_words=True, break_on_hyphens=False) or [""]


def shell_lines(command: str) -> list[str]:
    """A command (or comment) indented and wrapped with backslashes, to paste as is."""
    if command.startswith("#"):
        return [f"  {command}"]
    parts = textwrap.wrap(command, WIDTH - 8, break_long_words=False, break_on_hyphens=False)
    return [
        ("  $ " if i == 0 else "      ") + p + (" \\" if i < len(parts) - 1 else "")
        for i, p in enumerate(parts)
    ]


def plain_body(ri: ReportInput) -> str:
    """The email body: plain text, no line over 80 columns."""
    out: list[str] = []
    out += wrap(
        f"farm bisected a regression found while soak-testing the series "
        f'"{ri.series_title}" ({ri.total} patches).'
    )
    out.append("")
    for line in what_regressed(ri):
        out += wrap(line)
    out.append("")
    out += wrap(verdict(ri))
    out.append("")
    out.append("Test runs (kernel = base plus the first N patches):")
    out += run_table(ri)
    if ri.reproduce:
        out += ["", "To reproduce with farm:"]
        for command in ri.reproduce:
            out += shell_lines(command)
    out += ["", "-- ", f"farm bisection {ri.bisection_id}"]
    return "\n".join(line.rstrip() if line != "-- " else line for line in out) + "\n"
