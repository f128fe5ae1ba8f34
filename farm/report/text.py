# SPDX-License-Identifier: Apache-2.0
"""The report's words, shared by the email (plain text) and markdown/html renderers."""

from __future__ import annotations

import textwrap

from farm.report.model import Kernel, PassInput, PatchRef, ReportInput
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


def run_table(ri: ReportInput | PassInput) -> list[str]:
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


def patch_list(patches: list[PatchRef], total: int) -> list[str]:
    """Each applied patch with its Message-ID, the key to find it in the archive."""
    out = []
    for p in patches:
        line = f"  {p.index:02d}/{total:02d} {p.subject}"
        out += textwrap.wrap(line, WIDTH, subsequent_indent=" " * 8, break_on_hyphens=False)
        out.append(f"        {p.message_id or '(no Message-ID)'}")
    return out


def kernel_facts(kernel: Kernel, config_name: str | None) -> list[str]:
    facts = [
        ("base commit", kernel.base_commit),
        ("kernel", kernel.release),
        ("compiler", kernel.compiler),
        ("kernel config", config_name and f'attached as "{config_name}"'),
        ("config sha256", kernel.config_sha256),
        ("machine", kernel.machine),
    ]
    return [f"{name + ':':<15}{value}" for name, value in facts if value]


def crash_block(ri: ReportInput) -> list[str]:
    """The titled report's lines as the console had them: never wrapped or re-indented,
    a patch author greps for them."""
    if not ri.crash_report:
        return []
    where = f" on {ri.crash_host}" if ri.crash_host else ""
    when = (
        f" at {uptime(ri.crash_uptime_seconds / 3600)} uptime"
        if ri.crash_uptime_seconds is not None
        else ""
    )
    return [f"The crash{where}{when}:", "", *ri.crash_report, ""]


def _finish(out: list[str], signature: str) -> str:
    out += ["", "-- ", signature]
    return "\n".join(line.rstrip() if line != "-- " else line for line in out) + "\n"


def plain_body(ri: ReportInput, tags: list[str], attached: list[str]) -> str:
    """The email body: the verdict and the tags (a trailer block, then a ``---`` line as
    in a patch mail, so that ``git mailinfo`` and ``git interpret-trailers`` find them),
    then the evidence. Only the crash report's own lines may pass 80 columns."""
    out = ["Hello,", ""]
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
    out += wrap(
        "If you fix the issue in a separate patch (not only in a new version of this "
        "series), please add these tags:"
    )
    out += ["", *tags, "---", *crash_block(ri)]
    if ri.applied:
        out += ["Patches applied on the base:", *patch_list(ri.applied, ri.total), ""]
    out += kernel_facts(ri.kernel, "config" if "config" in attached else None)
    if ri.load:
        soak = f" for {format_duration(ri.soak_seconds)}" if ri.soak_seconds else ""
        out.append(f"{'load:':<15}{ri.load}{soak}")
    if "repro.sh" in attached:
        out.append(f'{"reproducer:":<15}attached as "repro.sh" (sh repro.sh apply TREE, ')
        out.append(f"{'':<15}then build TREE, then run on the test machine)")
    out += ["", "Test runs (kernel = base plus the first N patches):"]
    out += run_table(ri)
    if ri.reproduce:
        out += ["", "To reproduce with farm:"]
        for command in ri.reproduce:
            out += shell_lines(command)
    return _finish(out, f"farm bisection {ri.bisection_id}")


def hours(value: float) -> str:
    """Soak hours as testers count them: 24h, not 1d; minutes below an hour."""
    return f"{round(value, 1):g}h" if value >= 1 else uptime(value)


def pass_body(pi: PassInput, tags: list[str], attached: list[str]) -> str:
    """A soak that passed: hours and hosts first, then the Tested-by: trailer."""
    hosts = ", ".join(pi.hosts)
    upto = f"01..{pi.upto:02d} of {pi.total}" if pi.upto < pi.total else f"all {pi.total}"
    out = ["Hello,", ""]
    out += wrap(
        f'farm soak-tested the series "{pi.series_title}" ({upto} patches applied) for '
        f"{hours(pi.hours)} in total on {hosts} under the load {pi.load}: no crash, no "
        f"hang and no counter regression against the base kernel."
    )
    out += ["", *tags, "---", "Patches applied on the base:"]
    out += patch_list(pi.applied, pi.total)
    out += ["", *kernel_facts(pi.kernel, "config" if "config" in attached else None)]
    out += ["", "Test runs (kernel = base plus the first N patches):"]
    out += run_table(pi)
    return _finish(out, f"farm series {pi.series_id}")
