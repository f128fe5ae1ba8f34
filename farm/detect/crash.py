# SPDX-License-Identifier: Apache-2.0
"""Kernel console text to titled, deduplicated crashes (syzbot's title convention).

`parse(text)` finds every crash in a console log; `CrashStream` does the same line by line
for a live console with bounded memory. Both run the same state machine, so they agree.

A report starts at a line holding an oops header (``BUG:``, ``WARNING:``, ``general
protection fault``, ...; see crash_rules) and ends when the next report starts in the same
printk context, when the kernel has printed its end marker and a short tail, when it grows
past `MAX_REPORT_LINES`, or at the end of input. Lines from other printk contexts
(``[T123]``/``[C1]`` caller ids) and unreliable ``? func+0x`` frames are left out of it.
Line numbers (`Crash.start_line`) are 1-based, like ``grep -n``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from farm.detect import crash_oopses as oopses
from farm.detect import crash_rules as rules
from farm.detect.crash_rules import PARSE, Oops, Part, Rule, Stack

MAX_REPORT_LINES = 1000  # raw console lines a report may span
MAX_REPORT_SECONDS = 60.0  # console time a report may span: an oops prints in a burst
MAX_LINE_CHARS = 1024  # longer lines are cut: a flood must not exhaust memory
MAX_PENDING = 8  # reports open at once (one per printk context)
TAIL_LINES = 40  # lines still taken after "---[ end trace": the panic that follows
MAX_FRAMES = 32


class Kind(StrEnum):
    BUG = "BUG"
    WARNING = "WARNING"
    KASAN = "KASAN"
    KFENCE = "KFENCE"
    KMSAN = "KMSAN"
    KCSAN = "KCSAN"
    UBSAN = "UBSAN"
    GPF = "GPF"
    PAGING_FAULT = "PAGING_FAULT"
    SOFT_LOCKUP = "SOFT_LOCKUP"
    HARD_LOCKUP = "HARD_LOCKUP"
    RCU_STALL = "RCU_STALL"
    HUNG_TASK = "HUNG_TASK"
    LOCKDEP = "LOCKDEP"
    MEMORY_LEAK = "MEMORY_LEAK"
    PANIC = "PANIC"
    OOM = "OOM"
    OTHER = "OTHER"


# First matching title prefix decides the kind.
_KIND_PREFIXES: tuple[tuple[str, Kind], ...] = (
    ("KASAN:", Kind.KASAN),
    ("KFENCE:", Kind.KFENCE),
    ("KMSAN:", Kind.KMSAN),
    ("KCSAN:", Kind.KCSAN),
    ("UBSAN:", Kind.UBSAN),
    ("general protection fault", Kind.GPF),
    ("BUG: unable to handle kernel", Kind.PAGING_FAULT),
    ("Unhandled fault", Kind.PAGING_FAULT),
    ("BUG: soft lockup", Kind.SOFT_LOCKUP),
    ("BUG: hard lockup", Kind.HARD_LOCKUP),
    ("INFO: rcu detected stall", Kind.RCU_STALL),
    ("INFO: task hung", Kind.HUNG_TASK),
    ("INFO: task can't die", Kind.HUNG_TASK),
    ("possible deadlock", Kind.LOCKDEP),
    ("inconsistent lock state", Kind.LOCKDEP),
    ("WARNING: locking bug", Kind.LOCKDEP),
    ("INFO: trying to register non-static key", Kind.LOCKDEP),
    ("memory leak", Kind.MEMORY_LEAK),
    ("kernel panic", Kind.PANIC),
    ("PANIC:", Kind.PANIC),
    ("kernel stack overflow", Kind.PANIC),
    ("OOM", Kind.OOM),
    ("WARNING", Kind.WARNING),
    ("BUG:", Kind.BUG),
    ("kernel BUG", Kind.BUG),
)
_LOCK_BUGS = ("bad unlock balance", "held lock freed", "still has locks held", "lock held when")


def kind_of(title: str) -> Kind:
    if any(marker in title for marker in _LOCK_BUGS):
        return Kind.LOCKDEP
    return next((kind for prefix, kind in _KIND_PREFIXES if title.startswith(prefix)), Kind.OTHER)


@dataclass(frozen=True)
class Crash:
    """One crash report found in console text."""

    title: str
    kind: Kind
    corrupted: bool
    start_line: int  # 1-based line of the report's first line in the input
    report: str
    signature: str  # stable dedup key: hash of the title and the top frames
    alt_titles: list[str] = field(default_factory=list, hash=False)
    frames: list[str] = field(default_factory=list, hash=False)  # helper frames skipped
    corrupted_reason: str = ""  # why `corrupted` is set, for people reading the report

    def matches(self, title: str) -> bool:
        """True when `title` names this crash (its title or one of its alternatives)."""
        return title == self.title or title in self.alt_titles

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "kind": str(self.kind),
            "corrupted": self.corrupted,
            "corrupted_reason": self.corrupted_reason,
            "frames": self.frames,
            "start_line": self.start_line,
        }


# ---------------------------------------------------------------------------------------
# Console line prefixes.

_CONTEXT_RE = re.compile(
    r"^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:.* login: )?(?:<[0-9]+>)?"
    r"\[ *([0-9]+\.[0-9]+)\](\[ *(?:C|T)[0-9]+\])? "
)
_STAMP_RE = re.compile(r"(?:<[0-9]+>)?\[ *([0-9]+\.[0-9]+)\](\[ *(?:C|T)[0-9]+\])? ")  # fast path
_QUESTIONABLE_RE = re.compile(r"(\[<[0-9a-f]+>\])? \? ")
_CPU_CONTEXT_RE = re.compile(r"\[ *C[0-9]+\]")
_CPU_PID = re.compile(r"^CPU: ([0-9]+) (?:UID: [0-9]+ )?PID: ([0-9]+)", re.MULTILINE)
_NO_CONTEXT, _CONSOLE = "", "console"  # no timestamp / timestamp without caller id
_END_MARKERS = ("---[ end trace", "---[ end Kernel panic", "Kernel Offset:", "Rebooting in ")
_BOOT_BANNER = "Linux version "  # the machine rebooted: whatever was open is over
_KERNEL_CONTEXT = re.compile(
    r"cut here|CPU: [0-9]+ (?:UID: [0-9]+ )?PID: |Call [Tt]race|Modules linked in|RIP: |"
    r"pc : |Krnl PSW|NIP[: ]|EIP[: ]|PC is at|Backtrace:|\] \(.*\) from \[<|Hardware name:|"
    r"---\[ end |Kernel Offset:|unreferenced object|backtrace"
)
# Headers any program may print; the others (``kernel BUG at``, ``Kernel panic``) are the
# kernel's own words.
_GENERIC_HEADERS = ("WARNING:", "INFO:", "BUG:", "panic:")
_PREAMBLE_LINES = 3  # lines before a header kept for the report: "cut here", the message


# Console formats wrapping kernel lines. Each is stripped to the raw printk text; lines
# another program wrote (a daemon in syslog, a test harness in LAVA) are not the kernel's.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SYSLOG = re.compile(
    r"(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9:]+)?)"
    r"(?: [^\s:]+)? ([^\s:\[]+)(?:\[[0-9]+\])?: ?"
)
_DMESG_X = re.compile(r"([a-z0-9]+) *: *(?:emerg|alert|crit|err|warn|notice|info|debug) *: ")
_DMESG_T = re.compile(
    r"\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ 0-9]?[0-9] [0-9:]{8} [0-9]{4}\] "
)
_NETCONSOLE = re.compile(r"[0-9]+,[0-9]+,[0-9]+,[^;]*;")
_LAVA = re.compile(r'- \{"dt": "[^"]*", "lvl": "([a-z]+)", "msg": "(.*)"\}$')
_LEVEL = re.compile(r"<[0-7]>")
_MONOTONIC = re.compile(r"(\[ *[0-9]+\.[0-9]+\]) [^\s:]+ kernel: ")


class _Console(NamedTuple):
    text: str  # the kernel's line, console wrapping removed
    kernel: bool  # the wrapping says the kernel printed it (log level, facility, kernel:)


def _unwrap(line: str) -> _Console | None:
    """The printk text of a console line in any supported format; None for userspace."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if not line or (line[0] == "[" and line[1:2] in " 0123456789"):
        if " kernel: " in line:  # journalctl -o short-monotonic: "[  1.2] host kernel: "
            match = _MONOTONIC.match(line)
            if match:
                return _Console(f"{match.group(1)} {line[match.end() :]}", True)
        return _Console(line, False)  # raw printk: the common case, kept fast
    match = _SYSLOG.match(line)
    if match:
        if match.group(1) != "kernel":
            return None
        return _Console(line[match.end() :], True)
    match = _DMESG_X.match(line)
    if match:
        return _Console(line[match.end() :], True) if match.group(1) == "kern" else None
    match = _LAVA.match(line)
    if match:
        if match.group(1) != "target":
            return None
        return _Console(_lava_text(match.group(2)), False)
    for wrapper in (_DMESG_T, _NETCONSOLE, _LEVEL):
        match = wrapper.match(line)
        if match:
            return _Console(line[match.end() :], True)
    return _Console(line, False)


def _lava_text(escaped: str) -> str:
    try:
        return str(json.loads(f'"{escaped}"'))
    except ValueError:
        return escaped


class _Line(NamedTuple):
    context: str  # printk caller id, _CONSOLE, or _NO_CONTEXT
    text: str  # after the timestamp and caller id
    questionable: bool  # an unreliable "? func+0x" frame
    stamp: float | None  # console timestamp, seconds


def _split_prefix(line: str) -> _Line:
    match = _STAMP_RE.match(line)
    if match is None and (line.startswith("** ") or " login: " in line):
        match = _CONTEXT_RE.match(line)
    if match is None:
        return _Line(_NO_CONTEXT, line, False, None)
    context = match.group(2) or _CONSOLE
    stamp = float(match.group(1))
    text = line[line.index("] ") + 2 :]
    if "<EOI>" not in text:
        if text.startswith("? "):  # a decoded stack (decode_stacktrace.sh, dmesg -x)
            return _Line(context, text[1:], True, stamp)
        if " ? " in text and _QUESTIONABLE_RE.search(text):
            return _Line(context, text[text.index(" ? ") + 2 :], True, stamp)
        if text.endswith(" (unreliable)"):  # powerpc
            return _Line(context, text[:-13], True, stamp)
    return _Line(context, text, False, stamp)


def _stream_key(context: str) -> str:
    """Reports are tracked per printk caller; untagged lines form one stream."""
    return context if context not in (_NO_CONTEXT, _CONSOLE) else _CONSOLE


def _find_oops(line: str, oopses: tuple[Oops, ...]) -> Oops | None:
    for oops in oopses:
        if oops.header in line and not any(s.search(line) for s in oops.suppressions):
            return oops
    return None


# ---------------------------------------------------------------------------------------
# Titles.

_HELPERS = re.compile("|".join(rules.HELPER_FRAMES))
_NEVER = re.compile(r"(?!x)x")
_FRAME_SUFFIX = re.compile(r"\.(?:isra|constprop|part|cold|llvm|lto_priv)(?:\.[0-9a-z]+)*$")


@dataclass(frozen=True)
class _Skip:
    """Frames that cannot be guilty: the shared helpers plus a rule's own list."""

    extra: re.Pattern[str]
    seen: dict[str, bool] = field(default_factory=dict, compare=False)  # names repeat a lot

    def __call__(self, name: str) -> bool:
        skipped = self.seen.get(name)
        if skipped is None:
            skipped = bool(_HELPERS.search(name) or self.extra.search(name))
            if len(self.seen) < 100_000:  # bounded: a live console runs for weeks
                self.seen[name] = skipped
        return skipped


_SKIPS: dict[tuple[str, ...], _Skip] = {}


def _skip_for(extra: tuple[str, ...]) -> _Skip:
    if extra not in _SKIPS:
        _SKIPS[extra] = _Skip(re.compile("|".join(extra)) if extra else _NEVER)
    return _SKIPS[extra]


def _strip_frame(name: str) -> str:
    """Drop the longest syscall-wrapper prefix: __se_sys_foo and __x64_sys_foo name foo."""
    prefixes = [p for p in rules.STRIP_FRAME_PREFIXES if name.startswith(p)]
    return name[len(max(prefixes, key=len)) :] if prefixes else name


def _append_frame(frames: list[str], match: re.Match[str] | None, skip: _Skip) -> None:
    for name in match.groups() if match else ():
        if name is not None and not skip(name):
            frames.append(_strip_frame(name))
            return


_ANY_STACK_START = re.compile("|".join(f"(?:{s.pattern})" for s in rules.STACK_STARTS))


_STACK_START_WORDS = ("race", "Allocated", "Freed", "Uninit")  # one is in every start


def _is_stack_start(line: str) -> bool:
    return any(w in line for w in _STACK_START_WORDS) and _ANY_STACK_START.search(line) is not None


def _frame_match(line: str) -> re.Match[str] | None:
    for frame_re in rules.FRAME_RES:
        match = frame_re.search(line)
        if match:
            return match
    return None


def _guilty_frames(stack: Stack, parts: tuple[Part, ...], text: str) -> tuple[list[str], bool]:
    """Walk `parts` over the lines of `text`; one key frame per parsed stack (or end)."""
    skip = _skip_for(stack.skip)
    lines: Iterator[str] = iter(text.split("\n"))
    frames: list[str] = []
    results: list[str] = []
    ok, stacks, index = True, 0, 0
    while True:
        if index == len(parts) or (parts[index] is PARSE and stacks > 0):
            key = (stack.extractor or (lambda f: f[0]))(frames) if frames else ""
            if not key:
                key, ok = "corrupted", False
            results.append(key)
            frames = []
        if index == len(parts):
            return results, ok
        part = parts[index]
        if isinstance(part, re.Pattern):
            for line in lines:
                if any(c.search(line) for c in rules.CORRUPTED_LINES):
                    ok = False
                    break
                match = part.search(line)
                if match:
                    _append_frame(frames, match, skip)
                    break
        else:
            stacks += 1
            following = parts[index + 1] if index + 1 < len(parts) else None
            for line in lines:
                if any(c.search(line) for c in rules.CORRUPTED_LINES):
                    ok = False
                    break
                if _is_stack_start(line):
                    break
                if isinstance(following, re.Pattern):
                    match = following.search(line)
                    if match:
                        _append_frame(frames, match, skip)
                        index += 1  # the following part is done too
                        break
                _append_frame(frames, _frame_match(line), skip)
        index += 1


def _stack_frames(stack: Stack, text: str) -> tuple[list[str], bool]:
    frames, ok = _guilty_frames(stack, stack.parts, text)
    if ok or not stack.parts2:
        return frames, ok
    return _guilty_frames(stack, stack.parts2, text)


def _format(template: str, args: list[str]) -> str:
    return template.format("", *args)  # templates count from {1}


@dataclass
class _Title:
    title: str = ""
    alt: list[str] = field(default_factory=list)
    reason: str = ""  # why the report is corrupted, empty when it is not
    rule: Rule | None = None


def _describe(text: str, oops: Oops) -> _Title:
    """The title of the rule matching earliest in the report (syzkaller's precedence)."""
    best = _Title()
    start = len(text)
    matched_title = False
    for rule in oops.rules:
        match = rule.title.search(text)
        if match is None or match.start() > start or (match.start() == start and best.title):
            continue
        if match.start() < start:
            best, start = _Title(), match.start()
        matched_title = True
        if rule.report is not None:
            match = rule.report.search(text)
            if match is None:
                continue
        args = [group or "" for group in match.groups()]
        reason = ""
        if rule.stack is not None:
            frames, ok = _stack_frames(rule.stack, text[match.start() :])
            reason = "" if ok else "no stack frame could be attributed to the guilty function"
            args += frames
        best = _Title(_format(rule.fmt, args), [_format(a, args) for a in rule.alt], reason, rule)
    if not best.title:
        # A header without a matching rule: the report is cut; name it by its first line.
        pos = text.find(oops.header)
        best.title = text[pos:].split("\n", 1)[0] if pos >= 0 else oops.header
        best.reason = "the report's head is cut" if matched_title else ""
    elif best.rule is not None and best.rule.corrupted:
        best.reason = "the report's head is lost"
    return best


@functools.lru_cache(maxsize=4096)  # titles repeat: a crash loop prints the same one
def _clean_title(title: str) -> str:
    for pattern, replacement in rules.TITLE_REPLACEMENTS:
        while True:
            replaced = pattern.sub(replacement, title)
            if replaced == title:
                break
            title = replaced
    title = "".join(" " if ch == "\t" else ch for ch in title[:120] if ch >= " " and ch < "\x7f")
    return re.sub(" {2,}", " ", title).strip()


def _lacks_stack(text: str, rule: Rule | None) -> bool:
    """A report whose format promises a stack trace but shows no frames is truncated."""
    if rule is None or rule.no_stack_trace:
        return False
    has_stack = False
    for start in rules.STACK_STARTS:
        match = start.search(text)
        if match is None:
            continue
        lines = text[match.start() :].split("\n")
        if len(lines) < 4:
            return True
        for line in lines[1:16]:
            if _is_stack_start(line):
                break
            if "(stack is not available)" in line or _frame_match(line):
                has_stack = True
                break
        else:
            return True
        if not has_stack:
            return True
    return not has_stack


def _report_frames(text: str, stack: Stack | None) -> list[str]:
    """Normalised frames of the first stack (after the faulting RIP), helpers skipped."""
    skip = _skip_for(stack.skip if stack else ())
    frames: list[str] = []
    in_stack = False
    for line in text.split("\n"):
        if not in_stack:
            rip = rules.RIP_FRAME.search(line)
            if rip and rip.group(1) and not frames:
                _append_frame(frames, rip, skip)
            in_stack = _is_stack_start(line)
            continue
        if _is_stack_start(line) or line.startswith(("---[ end", "=====")):
            break
        _append_frame(frames, _frame_match(line), skip)
    names = [_FRAME_SUFFIX.sub("", name) for name in frames]
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]][:MAX_FRAMES]


def _signature(title: str, frames: list[str]) -> str:
    return hashlib.sha256("\n".join([title, *frames[:3]]).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# The state machine.


@dataclass
class _Report:
    oops: Oops
    context: str
    key: str
    start_line: int
    start_stamp: float | None
    lines: list[str]
    seen: int = 0  # raw lines since the start
    tail: int = -1  # lines left after the end marker, -1 before it
    skip_rest: bool = False  # the panic_on_warn echo of this report: not part of it
    kernel: bool = True  # something in it shows the kernel printed it (see _KERNEL_CONTEXT)
    preamble: list[str] = field(default_factory=list)  # its context's lines just before
    interrupted: bool = False  # ended by another report starting on an untagged console
    cpu_traceback: bool = False  # "Sending NMI": other CPUs' backtraces belong here

    def add(self, text: str) -> None:
        if "Disabling lock debugging due to kernel taint" in text or self.skip_rest:
            return
        if "Sending NMI" in text or "NMI backtrace for cpu" in text:
            self.cpu_traceback = True
        elif len(self.lines) > self._min_lines() and (
            "Kernel panic - not syncing" in text
            or "WARNING: possible circular locking dependency detected" in text
        ):
            # panic_on_warn reprints the stack, and oopses provoke lockdep reports:
            # with enough of the report in hand, the rest is noise.
            self.skip_rest = True
            return
        self.lines.append(text[:MAX_LINE_CHARS])
        if not self.kernel and _KERNEL_CONTEXT.search(text):
            self.kernel = True
        if self.tail > 0:
            self.tail -= 1
        elif self.tail < 0 and text.startswith(_END_MARKERS):
            self.tail = TAIL_LINES

    def ended(self, line: str, parsed: _Line, oops: Oops | None) -> bool:
        """Count `line` against the report's span; true when the report is over."""
        self.seen += 1
        if self.seen > MAX_REPORT_LINES or self.tail == 0:
            return True
        if parsed.stamp is not None and self.start_stamp is not None:
            # Its own context's clock only: other CPUs' and tasks' lines come out of order.
            elapsed = abs(parsed.stamp - self.start_stamp)  # backwards: the machine rebooted
            if elapsed > MAX_REPORT_SECONDS and parsed.context == self.context:
                return True
        return (
            self.key == _CONSOLE and oops is None and any(m in line for m in rules.INFO_WITH_STACK)
        )

    def _min_lines(self) -> int:
        return 16 if "BUG: KMSAN:" in self.lines[0] else 21

    def accepts(self, context: str) -> bool:
        return context == self.context or (
            self.cpu_traceback and _CPU_CONTEXT_RE.fullmatch(context) is not None
        )

    def _interleaving(self, text: str) -> str:
        """Why the report mixes two oopses' lines, or "": on a console without printk
        caller ids, two CPUs oopsing at once interleave their lines and frames cannot be
        attributed to either."""
        if self.key != _CONSOLE or self.cpu_traceback:
            return ""
        tasks = sorted(set(_CPU_PID.findall(text.split("---[ end", 1)[0])))
        if len(tasks) < 2:
            return ""
        named = " and ".join(f"CPU {cpu} PID {pid}" for cpu, pid in tasks[:2])
        return f"oopses of {named} interleaved without printk caller ids"

    def finish(self) -> Crash:
        text = "".join(line + "\n" for line in self.lines)
        described = _describe(text, self.oops)
        title = _clean_title(described.title)
        reason = described.reason
        if not reason and rules.CORRUPTED_TITLE.search(described.title) is not None:
            reason = "two messages interleaved in the title line"
        if not reason and _lacks_stack(text, described.rule):
            reason = "the report has no stack frames where its kind prints some"
        if reason and self.interrupted and described.rule and described.rule.stack:
            reason = "another oops started before its stack: reports interleave without caller ids"
        if not reason:
            reason = self._interleaving(text)
        stack = described.rule.stack if described.rule else None
        frames = _report_frames(text, stack)
        preamble = "".join(line + "\n" for line in self.preamble)
        return Crash(
            title=title,
            kind=kind_of(title),
            corrupted=bool(reason),
            corrupted_reason=reason,
            start_line=self.start_line,
            report=preamble + text,
            signature=_signature(title, frames),
            alt_titles=[_clean_title(alt) for alt in described.alt],
            frames=frames,
        )


class _Anchors(NamedTuple):
    """Substrings one of which is in every line holding an oops header. Words starting
    with a capital go into one regex (few places in a text start with a capital, so it
    scans fast); the rest are looked for one by one (str.find), each scanning the text once."""

    capitalised: re.Pattern[str]
    others: tuple[str, ...]


def _anchors(oopses: tuple[Oops, ...]) -> _Anchors:
    # One word for several headers: "kernel BUG", "BUG:", "Kernel panic", "panic:", ...
    words = {next((w for w in ("BUG", "panic") if w in o.header), o.header) for o in oopses}
    capitalised = sorted(w for w in words if w[0].isupper())
    return _Anchors(
        re.compile("|".join(map(re.escape, capitalised))),
        tuple(sorted(w for w in words if not w[0].isupper())),
    )


_ANCHORS = {False: _anchors(oopses.OOPSES), True: _anchors((*oopses.OOPSES, oopses.OOM))}


class CrashStream:
    """Feed console lines one at a time; get each crash once its report has ended.

    Untagged consoles interleave everything, so a new oops ends the open report. With
    printk caller ids (``[T123]``) a report keeps collecting its own context after a
    later oops in it (often a consequence, or a header split by another printk), and the
    later oops opens a report of its own; a crash repeating the title of an overlapping
    earlier one in the same context is dropped as part of it.
    """

    def __init__(self, *, report_oom: bool = False) -> None:
        self._oopses = (*oopses.OOPSES, oopses.OOM) if report_oom else oopses.OOPSES
        self._open: list[_Report] = []
        self._line_no = 0
        self._last: dict[str, tuple[str, int]] = {}  # context -> (title, last line) emitted
        # The raw lines just before, for a report's preamble.
        self._recent: deque[str] = deque(maxlen=_PREAMBLE_LINES)
        self._anchors = _ANCHORS[report_oom]

    def feed(self, line: str) -> list[Crash]:
        """Consume one line (its newline optional); return the crashes it completed."""
        self._line_no += 1
        line = line.rstrip("\r\n")
        console = _unwrap(line)
        crashes = []
        # A daemon's or the harness's line is never the kernel's.
        if console is not None:
            oops = self._find_oops(console.text)
            if oops is not None or self._open:
                crashes = self._emit(self._route(console, oops))
        self._recent.append(line)
        return crashes

    def _find_oops(self, text: str) -> Oops | None:
        # Most lines hold no header: the anchors say so faster than trying every header.
        anchors = self._anchors
        if anchors.capitalised.search(text) is None and not any(w in text for w in anchors.others):
            return None
        return _find_oops(text, self._oopses)

    def flush(self) -> list[Crash]:
        """End of input (or the host died): emit every open report."""
        done, self._open = self._open, []
        return self._emit(done)

    @property
    def idle(self) -> bool:
        return not self._open

    def _skip_idle(self, count: int, tail: list[str]) -> None:
        """Account for `count` lines known to hold no oops header while no report is open;
        `tail` are the last of them, the preamble of a report starting next."""
        assert not self._open
        if count == 0:
            return
        self._line_no += count
        self._recent.extend(line.rstrip("\r") for line in tail)

    def _route(self, console: _Console, oops: Oops | None) -> list[_Report]:
        line = console.text
        parsed = _split_prefix(line)
        context, text, questionable, _ = parsed
        key = _stream_key(context)
        if text.startswith(_BOOT_BANNER):
            done, self._open = self._open, []
            return done
        done = [r for r in self._open if r.ended(line, parsed, oops)]
        if oops is not None:
            mine = [r for r in self._open if r.key == key and r not in done]
            split_header = key != _CONSOLE and len(mine[-1].lines if mine else "..") < 2
            if mine and (_continues(text, oops) or split_header):
                oops = None  # a consequence of the open report, or its split header
            elif key == _CONSOLE or not mine:
                cut = [r for r in self._open if r.key == _CONSOLE and r not in done]
                for report in cut:
                    report.interrupted = True
                done += cut
        self._open = [r for r in self._open if r not in done]
        if not questionable or oops is not None:
            for report in self._open:
                if report.accepts(context):
                    report.add(text)
        if oops is not None:
            self._open.append(self._start(oops, parsed, console.kernel))
            if len(self._open) > MAX_PENDING:
                done.append(self._open.pop(0))
        return done

    def _start(self, oops: Oops, parsed: _Line, kernel: bool) -> _Report:
        """A report from its header line, with the lines of its context just before it
        (``cut here`` and the message a BUG prints first, like ``list_del corruption``)."""
        kernel_lines = (c.text for c in map(_unwrap, self._recent) if c is not None)
        same = [
            before.text[:MAX_LINE_CHARS]
            for before in map(_split_prefix, kernel_lines)
            if before.context == parsed.context
        ]
        cuts = [i for i, line in enumerate(same) if "cut here" in line]
        # From the message printed just before "cut here" (list_del corruption, ...).
        preamble = same[max(cuts[-1] - 1, 0) :] if cuts else []
        text = parsed.text[:MAX_LINE_CHARS]
        evident = (
            kernel
            or parsed.stamp is not None
            or oops.header not in _GENERIC_HEADERS
            or text.strip() == oops.header
            or bool(preamble)
        )
        return _Report(
            oops,
            parsed.context,
            _stream_key(parsed.context),
            self._line_no,
            parsed.stamp,
            [text],
            kernel=evident or _KERNEL_CONTEXT.search(text) is not None,
            preamble=preamble,
        )

    def _emit(self, reports: list[_Report]) -> list[Crash]:
        crashes = []
        for report in sorted(reports, key=lambda r: r.start_line):
            if not report.kernel:
                continue  # nothing shows the kernel printed it: a program's "WARNING:"
            crash = report.finish()
            title, last_line = self._last.get(report.key, ("", 0))
            if report.key != _CONSOLE and crash.title == title and crash.start_line <= last_line:
                continue
            self._last[report.key] = (crash.title, report.start_line + report.seen)
            crashes.append(crash)
        if crashes:  # forget reports that no open or future report can overlap
            horizon = min((r.start_line for r in self._open), default=self._line_no)
            self._last = {k: v for k, v in self._last.items() if v[1] >= horizon}
        return crashes


def _continues(text: str, oops: Oops) -> bool:
    """Whether a header line inside an open report belongs to it rather than starting one:
    consequences (the panic after an oops) and headers no rule knows (the ``INFO: Slab``
    and ``INFO: Object`` lines of a SLUB report)."""
    if any(pattern.search(text) for pattern in rules.REPORT_CONTINUATIONS):
        return True
    return not any(rule.title.search(text) for rule in oops.rules)


class _Scanner:
    """The next place in a text that may hold an oops header, each anchor's search
    resuming where it left off: the whole text is scanned once per anchor."""

    def __init__(self, text: str, anchors: _Anchors) -> None:
        self._text = text
        self._anchors = anchors
        self._next: dict[str, int] = {}  # anchor -> its next occurrence (-1: none left)
        self._capitalised = -2  # next capitalised match, -2: not searched yet

    def find(self, pos: int) -> int:
        """Position of the first possible header at or after `pos`, -1 when none is left."""
        if -1 < self._capitalised < pos or self._capitalised == -2:
            hit = self._anchors.capitalised.search(self._text, pos)
            self._capitalised = hit.start() if hit else -1
        best = self._capitalised
        for word in self._anchors.others:
            at = self._next.get(word, -2)
            if -1 < at < pos or at == -2:
                at = self._next[word] = self._text.find(word, pos)
            if at >= 0 and (best < 0 or at < best):
                best = at
        return best


def _decode(text: str | bytes) -> str:
    return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text


def _tail_lines(text: str, start: int, end: int) -> list[str]:
    """The last `_PREAMBLE_LINES` whole lines of text[start:end] (`end` follows a newline)."""
    if end <= start:
        return []
    cut = end - 1  # the newline ending the last line
    for _ in range(_PREAMBLE_LINES):
        previous = text.rfind("\n", start, cut)
        if previous < 0:
            return text[start : end - 1].split("\n")
        cut = previous
    return text[cut + 1 : end - 1].split("\n")


def parse(text: str | bytes, *, report_oom: bool = False) -> list[Crash]:
    """Every crash in console text, in order of their first line.

    Runs the `CrashStream` machine, jumping over stretches without any oops header
    while no report is open (most of a console log), which is what makes it fast.
    """
    text = _decode(text)
    stream = CrashStream(report_oom=report_oom)
    scanner = _Scanner(text, _ANCHORS[report_oom])
    crashes: list[Crash] = []
    pos, end = 0, len(text)
    while pos < end:
        if stream.idle:
            hit = scanner.find(pos)
            if hit < 0:
                break
            line_start = text.rfind("\n", 0, hit) + 1
            stream._skip_idle(text.count("\n", pos, line_start), _tail_lines(text, pos, line_start))
            pos = line_start
        newline = text.find("\n", pos)
        stop = end if newline < 0 else newline
        crashes += stream.feed(text[pos:stop])
        pos = stop + 1
    # Reports of different printk contexts overlap and can end in any order.
    return sorted(crashes + stream.flush(), key=lambda crash: crash.start_line)


def unique(crashes: Iterable[Crash]) -> list[tuple[Crash, int]]:
    """The first crash of each title, and how many times that title occurred."""
    first: dict[str, Crash] = {}
    counts: dict[str, int] = {}
    for crash in crashes:
        first.setdefault(crash.title, crash)
        counts[crash.title] = counts.get(crash.title, 0) + 1
    return [(crash, counts[title]) for title, crash in first.items()]


def first_title(text: str | bytes) -> str | None:
    """The title of the first crash report in ``text``: did the kernel die, and how."""
    crashes = parse(text)
    return crashes[0].title if crashes else None
