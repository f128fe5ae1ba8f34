# SPDX-License-Identifier: Apache-2.0
"""From a pile of mail to one series: patches in numbered slots, a gap is a ``None``.

Replies and review mail are dropped, patches are ordered by their number (not by mbox
order), and when several versions are mixed the newest complete one wins, with a
warning that says so. The trailers ``git format-patch --base`` and b4 write
(``base-commit:``, ``prerequisite-patch-id:``, ``change-id:``) are read here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from farm.config import MAX_PATCHES
from farm.errors import UserError
from farm.intake.mbox import Mail, clean
from farm.intake.subject import SubjectInfo, parse_subject

_DIFF_START = re.compile(r"^(?:diff --git |--- \S[^\n]*\n\+\+\+ )", re.MULTILINE)
_FILE_LINE = re.compile(
    r"^(?:--- a/|\+\+\+ b/|rename from |rename to |copy from |copy to )([^\t\n]+)", re.MULTILINE
)
_GIT_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)
_INBODY_FROM = re.compile(r"\A\s*From:[ \t]*([^\n]+)\n")
_BASE = re.compile(r"^base-commit:[ \t]*([0-9a-f]{7,64})[ \t]*$", re.MULTILINE)
_PREREQ = re.compile(r"^prerequisite-patch-id:[ \t]*([0-9a-f]{40,64})[ \t]*$", re.MULTILINE)
_CHANGE_ID = re.compile(r"^change-id:[ \t]*(\S{1,200})[ \t]*$", re.MULTILINE)
_PLACEHOLDER = "*** SUBJECT HERE ***"


@dataclass(frozen=True)
class PatchMail:
    """One patch of a series: its number, its commit subject and the mail it came in."""

    index: int
    subject: str
    info: SubjectInfo
    mail: Mail
    author: str
    diff: str
    files: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subject": self.subject,
            "message_id": self.mail.message_id,
            "author": self.author,
        }


@dataclass
class ParsedSeries:
    """A series as slots: ``slots[i - 1]`` is patch i, or None when it is missing."""

    title: str
    version: int
    total: int
    cover: Mail | None
    slots: list[PatchMail | None]
    base_commit: str | None = None
    prerequisite_patch_ids: list[str] = field(default_factory=list)
    change_id: str | None = None
    duplicates: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [i for i, slot in enumerate(self.slots, 1) if slot is None]

    @property
    def patches(self) -> list[PatchMail]:
        return [slot for slot in self.slots if slot is not None]

    @property
    def label(self) -> str:
        return f"{self.title!r} v{self.version} ({self.total} patches)"

    def check_complete(self, allow_incomplete: bool) -> None:
        """A gap or a conflicting duplicate is an error unless the user allows it."""
        problems = []
        if self.missing:
            problems.append(f"missing patch {few_numbers(self.missing)} of {self.total}")
        if self.duplicates:
            problems.append(f"patch {few_numbers(self.duplicates)} sent twice with different diffs")
        if not problems:
            return
        if allow_incomplete:
            self.warnings.append(f"going ahead without a complete series: {'; '.join(problems)}")
            return
        raise UserError(
            f"series {self.label} is incomplete: {'; '.join(problems)}",
            hint="fetch the whole thread (b4 am <message-id>), or add --allow-incomplete",
        )

    def select(self, upto: int | None = None, patches: list[int] | None = None) -> list[PatchMail]:
        """The patches to apply: 1..upto, an explicit list, or every patch present."""
        if upto is not None and patches is not None:
            raise UserError("--upto and --patches exclude each other", hint="use one of them")
        if upto is not None and upto > self.total:  # before range(): --upto may be huge
            raise UserError(
                f"series {self.label} has no patch {upto} (it has {self.total})",
                hint=f"--upto {self.total} applies every patch",
            )
        wanted = range(1, upto + 1) if upto is not None else patches
        if wanted is None:
            return self.patches
        out_of_range = [i for i in wanted if not 1 <= i <= self.total]
        if out_of_range:
            raise UserError(
                f"series {self.label} has no patch {few_numbers(out_of_range)}",
                hint=f"choose numbers between 1 and {self.total}",
            )
        absent = [i for i in wanted if self.slots[i - 1] is None]
        if absent:
            raise UserError(
                f"cannot apply patch {few_numbers(absent)} of series {self.label}: not in the mbox",
                hint="fetch the whole thread (b4 am <message-id>) or choose other --patches",
            )
        return [slot for i in wanted if (slot := self.slots[i - 1]) is not None]

    def summary(self, selected: list[PatchMail] | None = None) -> dict[str, Any]:
        """The ``farm submit --dry-run --json`` document."""
        return {
            "series": {
                "title": self.title,
                "version": self.version,
                "total": self.total,
                "base_commit": self.base_commit,
                "cover_message_id": self.cover.message_id if self.cover else None,
            },
            "patches": [p.summary() for p in (self.patches if selected is None else selected)],
            "missing": self.missing,
            "warnings": self.warnings,
        }


def parse_selection(spec: str, limit: int = MAX_PATCHES) -> list[int]:
    """``1-7,9`` -> [1, 2, 3, 4, 5, 6, 7, 9]; no number may exceed ``limit``, the
    longest series farm reads, so a range never becomes a huge set."""
    numbers: set[int] = set()
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d{1,18})\s*(?:-\s*(\d{1,18})\s*)?", part)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise UserError(
                f"cannot read patch selection {spec!r} at {part!r}",
                hint="write numbers and ranges like --patches 1-7,9",
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high > limit:
            raise UserError(
                f"patch selection {spec!r} goes up to patch {high}; "
                f"farm reads series of at most {limit} patches",
                hint="choose numbers within the series, like --patches 1-7,9",
            )
        numbers.update(range(low, high + 1))
    return sorted(numbers)


def few_numbers(values: Sequence[int]) -> str:
    """'3, 5, 7 and 991 more': a message names a few numbers, never hundreds."""
    if len(values) <= 5:
        return ", ".join(str(v) for v in values)
    return f"{', '.join(str(v) for v in values[:3])} and {len(values) - 3:,} more"


@dataclass
class _Group:
    version: int
    total: int
    covers: list[Mail] = field(default_factory=list)
    patches: dict[int, list[PatchMail]] = field(default_factory=lambda: defaultdict(list))

    @property
    def complete(self) -> bool:
        return len(self.patches) == self.total and all(
            len({p.diff for p in found}) == 1 for found in self.patches.values()
        )

    def describe(self) -> str:
        return f"v{self.version} ({len(self.patches)} of {self.total})"


def group_series(
    mails: list[Mail], source: str = "the mbox", max_patches: int = MAX_PATCHES
) -> ParsedSeries:
    """The one series in ``mails``: the newest complete version, else the newest.

    A subject numbering more than ``max_patches`` is refused before any slot is made.
    """
    groups: dict[tuple[int, int], _Group] = {}
    skipped = 0
    for mail in mails:
        info = parse_subject(mail.subject)
        diff = _diff(mail.body)
        if info.is_reply or not (info.is_patch or diff):
            skipped += 1
            continue
        total = info.total or 1
        if total > max_patches:
            raise UserError(
                f"{mail.origin}: subject {mail.subject[:100]!r} numbers too long a series: "
                f"farm reads at most {max_patches} patches",
                hint="check the subject line; for a longer series raise [intake] max_patches",
            )
        group = groups.setdefault((info.version, total), _Group(info.version, total))
        if info.index == 0:
            group.covers.append(mail)
        else:
            group.patches[info.index or 1].append(_patch(info.index or 1, info, mail, diff))
    candidates = sorted(
        (g for g in groups.values() if g.patches),
        key=lambda g: (g.complete, g.version, len(g.patches)),
        reverse=True,
    )
    if not candidates:
        raise UserError(
            f"{source}: no patches among {len(mails)} messages "
            f"(subjects like '[PATCH 1/3] ...' carrying a diff; {skipped} replies or other mail)",
            hint="check the file is the series itself, e.g. b4 am -o . <message-id>",
        )
    chosen = candidates[0]
    series = _build(chosen)
    if skipped:
        series.warnings.insert(0, f"ignored {skipped} replies or other messages without a patch")
    if len(candidates) > 1:
        others = ", ".join(g.describe() for g in candidates[1:])
        newest = max(g.version for g in candidates)
        why = "newest complete" if chosen.version < newest else "newest"
        using = f"using {chosen.describe()}, the {why}"
        series.warnings.append(f"{source} also holds {others}; {using}")
    return series


def _build(group: _Group) -> ParsedSeries:
    warnings: list[str] = []
    slots: list[PatchMail | None] = [None] * group.total
    duplicates = []
    for index, found in sorted(group.patches.items()):
        distinct = list({p.diff: p for p in found}.values())
        if len(distinct) > 1:
            duplicates.append(index)
            warnings.append(f"patch {index} appears {len(distinct)} times; kept the last one")
        elif len(found) > 1:
            warnings.append(f"patch {index} appears {len(found)} times with the same diff")
        slots[index - 1] = distinct[-1]
        if not distinct[-1].diff:
            warnings.append(f"patch {index} carries no diff")
    cover = group.covers[-1] if group.covers else None
    first = next((s for s in slots if s is not None), None)
    title = parse_subject(cover.subject).subject if cover else ""
    if not title or title == _PLACEHOLDER:
        title = first.subject if first else ""
    bodies = "\n".join(m.body for m in [*group.covers, *(p.mail for p in slots if p)])
    base = _BASE.search(bodies)
    change = _CHANGE_ID.search(bodies)
    return ParsedSeries(
        title=title,
        version=group.version,
        total=group.total,
        cover=cover,
        slots=slots,
        base_commit=base.group(1) if base else None,
        prerequisite_patch_ids=list(dict.fromkeys(_PREREQ.findall(bodies))),
        change_id=change.group(1) if change else None,
        duplicates=duplicates,
        warnings=warnings,
    )


def _patch(index: int, info: SubjectInfo, mail: Mail, diff: str) -> PatchMail:
    inbody = _INBODY_FROM.match(mail.body)
    files = [*_FILE_LINE.findall(diff), *(p for pair in _GIT_HEADER.findall(diff) for p in pair)]
    return PatchMail(
        index=index,
        subject=info.subject,
        info=info,
        mail=mail,
        author=clean(inbody.group(1)) if inbody else mail.author,
        diff=diff,
        files=tuple(dict.fromkeys(f.strip() for f in files)),
    )


def _diff(body: str) -> str:
    start = _DIFF_START.search(body)
    return body[start.start() :] if start else ""
