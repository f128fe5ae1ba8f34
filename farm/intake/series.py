# SPDX-License-Identifier: Apache-2.0
"""From a pile of mail to one series: patches in numbered slots, a gap is a ``None``.

Replies and review mail are dropped, patches are ordered by their number (not by mbox
order), and when several versions are mixed the newest complete one wins, with a
warning that says so. The trailers ``git format-patch --base`` and b4 write
(``base-commit:``, ``prerequisite-patch-id:``, ``change-id:``) are read here.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.config import MAX_PATCHES
from farm.errors import UserError
from farm.git import git
from farm.intake.mbox import Mail, clean
from farm.intake.subject import SubjectInfo, parse_subject
from farm.intake.thread import Thread, mail_time
from farm.intake.trailers import Trailer, collect_trailers, without_present

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
# What git request-pull writes: a pull request, even when a diff follows.
_PULL = re.compile(
    r"^(?:The following changes since commit [0-9a-f]{7,}|"
    r"are available in the [Gg]it repository at:?)[ \t]*$",
    re.MULTILINE,
)


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
    trailers: dict[int, list[Trailer]] = field(default_factory=dict)
    """Trailers given in replies, by patch number (see farm.intake.trailers)."""
    without_diff: list[int] = field(default_factory=list)
    """Missing patches whose number came in a mail without a diff (taken as a reply)."""

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
        if self.without_diff:
            problems.append(f"patch {few_numbers(self.without_diff)} came without a diff")
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
            "patches": [
                {**p.summary(), "trailers": [t.line for t in self.trailers.get(p.index, [])]}
                for p in (self.patches if selected is None else selected)
            ],
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
    """One sending of a series: a cover (or patch 1) and the patches threaded to it."""

    version: int
    total: int
    anchor: Mail | None = None
    covers: list[Mail] = field(default_factory=list)
    patches: dict[int, list[PatchMail]] = field(default_factory=lambda: defaultdict(list))
    threaded: bool = True
    """Every patch replies to the anchor (none was placed by its date alone)."""

    @property
    def complete(self) -> bool:
        return len(self.patches) == self.total and all(
            len(distinct_changes(found)) == 1 for found in self.patches.values()
        )

    @property
    def time(self) -> float:
        mails = [self.anchor] if self.anchor else [p.mail for f in self.patches.values() for p in f]
        return max((mail_time(m) for m in mails), default=0.0)

    def describe(self, named: bool = False) -> str:
        text = f"v{self.version} ({len(self.patches)} of {self.total})"
        if named and self.anchor:
            text += f" {self.anchor.message_id or self.anchor.origin} of {self.anchor.date}"
        return text


@dataclass
class _Sorted:
    """The mail of an mbox by kind."""

    covers: list[tuple[SubjectInfo, Mail]] = field(default_factory=list)
    patches: list[PatchMail] = field(default_factory=list)
    replies: list[Mail] = field(default_factory=list)
    pulls: list[Mail] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    without_diff: list[SubjectInfo] = field(default_factory=list)


def group_series(
    mails: list[Mail], source: str = "the mbox", max_patches: int = MAX_PATCHES
) -> ParsedSeries:
    """The one series in ``mails``: the newest complete version, else the newest.

    Replies are never patches. Of two sendings of one version, the one threaded to its
    cover wins, then the later. A subject numbering more than ``max_patches`` is
    refused before any slot is made; a pull request is refused with a hint.
    """
    thread = Thread.of(mails)
    found = _sort(mails, thread, max_patches)
    groups = _sendings(found, thread)
    if not groups:
        raise _nothing_to_apply(found, len(mails), source)
    groups.sort(key=lambda g: (g.complete, g.version, g.threaded, g.time, len(g.patches)))
    chosen = groups[-1]
    series = _build(chosen)
    _add_trailers(series, found.replies, thread)
    series.without_diff = sorted(
        {
            i.index
            for i in found.without_diff
            if i.index in series.missing and (i.version, i.total) == (chosen.version, chosen.total)
        }
    )
    skipped = len(found.replies)
    notes = [f"ignored {skipped} replies or other messages without a patch"] if skipped else []
    series.warnings[:0] = [*notes, *found.warnings]
    if len(groups) > 1:
        series.warnings.append(_choice(groups, source))
    return series


def _sort(mails: list[Mail], thread: Thread, max_patches: int) -> _Sorted:
    found = _Sorted()
    numbered: set[str] = set()
    unnumbered: list[PatchMail] = []
    for mail in mails:
        info = parse_subject(mail.subject)
        diff = _diff(mail.body)
        if info.pull or (info.index is None and not info.is_reply and _PULL.search(mail.body)):
            found.pulls.append(mail)
            continue
        if info.is_reply or (info.index != 0 and not diff):
            found.replies.append(mail)  # "Re:", or a "[PATCH]" follow-up with no diff
            if not info.is_reply and info.index:
                found.without_diff.append(info)
            continue
        _check_total(info, mail, max_patches)
        if mail.message_id and info.index is not None:
            numbered.add(mail.message_id)
        if info.index == 0:
            found.covers.append((info, mail))
        elif info.index is None:
            unnumbered.append(_patch(1, info, mail, diff))
        else:
            found.patches.append(_patch(info.index, info, mail, diff))
    for patch in unnumbered:
        parent = thread.parent_here(patch.mail)
        # An unnumbered diff answering a numbered patch or cover is a suggestion in the
        # discussion, and so is a diff without a [PATCH] subject answering anything.
        if parent and (parent.message_id in numbered or not patch.info.is_patch):
            found.replies.append(patch.mail)
        else:
            found.patches.append(patch)
    if found.pulls and found.patches:
        found.warnings.append(f"ignored {len(found.pulls)} pull requests among the patches")
    return found


def _check_total(info: SubjectInfo, mail: Mail, max_patches: int) -> None:
    if (info.total or 1) > max_patches:
        raise UserError(
            f"{mail.origin}: subject {mail.subject[:100]!r} numbers too long a series: "
            f"farm reads at most {max_patches} patches",
            hint="check the subject line; for a longer series raise [intake] max_patches",
        )


def _nothing_to_apply(found: _Sorted, count: int, source: str) -> UserError:
    if found.pulls:
        pull = found.pulls[0]
        return UserError(
            f"{source}: {pull.subject[:100]!r} is a pull request, not a patch series: "
            "farm applies and bisects patches one by one, and a pull squashed into one "
            "diff cannot be bisected",
            hint="fetch the branch it names and submit its commits: "
            "git fetch URL BRANCH && git format-patch -o DIR BASE..FETCH_HEAD && farm submit DIR",
        )
    return UserError(
        f"{source}: no patches among {count} messages "
        f"(subjects like '[PATCH 1/3] ...' carrying a diff; {len(found.replies)} replies "
        "or other mail)",
        hint="check the file is the series itself, e.g. b4 am -o . <message-id>",
    )


_Buckets = dict[tuple[int, int], tuple[list[Mail], list[PatchMail]]]


def _sendings(found: _Sorted, thread: Thread) -> list[_Group]:
    """Patches and covers in sendings: by version and total, then by thread and date."""
    buckets: _Buckets = defaultdict(lambda: ([], []))
    for patch in found.patches:
        buckets[(patch.info.version, patch.info.total or 1)][1].append(patch)
    for info, cover in found.covers:
        key = _cover_key(info, cover, found, thread, buckets)
        buckets[key][0].append(cover)
    groups = []
    for (version, total), (covers, patches) in buckets.items():
        if patches:
            groups += _split(version, total, covers, patches, thread)
    return [g for g in groups if g.patches]


def _cover_key(
    info: SubjectInfo, cover: Mail, found: _Sorted, thread: Thread, buckets: _Buckets
) -> tuple[int, int]:
    """The bucket of a cover. A cover whose version or total differs from its patches'
    (``[PATCH v2 00/48]`` over ``[PATCH NN/48]``) goes with the patches threaded to it,
    or, unthreaded, with the one cover-less set of the same total; the patches take
    the cover's version when they name none. Either way a warning says so."""
    key = (info.version, info.total or 1)
    if buckets[key][1]:
        return key
    mine = [p for p in found.patches if cover.message_id in set(thread.ancestors(p.mail))]
    if not mine:
        lonely = [
            k
            for k, (covers, patches) in buckets.items()
            if patches and not covers and k[1] == key[1] and k != key
        ]
        if len(lonely) != 1:
            return key
        mine = list(buckets[lonely[0]][1])
    theirs = next(k for k, (_, patches) in buckets.items() if any(p is mine[0] for p in patches))
    said = f"cover letter {cover.message_id} says {cover.subject[:80]!r} but its patches"
    if any(p.info.has_version for p in mine) or not info.has_version:
        found.warnings.append(
            f"{said} are v{theirs[0]} of {theirs[1]}; keeping the patches' numbering"
        )
        return theirs
    moved = (info.version, theirs[1])
    found.warnings.append(f"{said} name no version; taking v{info.version} from the cover")
    taken = {id(p) for p in mine}
    for _, patches in buckets.values():
        patches[:] = [p for p in patches if id(p) not in taken]
    buckets[moved][1].extend(mine)
    return moved


def _split(
    version: int, total: int, covers: list[Mail], patches: list[PatchMail], thread: Thread
) -> list[_Group]:
    """One bucket as sendings: each cover (else each patch 1) starts one; a patch joins
    the one it replies to, else the latest one begun before it was sent."""
    anchors = covers or [p.mail for p in patches if p.index == 1]
    if len(anchors) <= 1:
        group = _Group(version, total, anchors[0] if anchors else None, list(covers))
        for patch in patches:
            group.patches[patch.index].append(patch)
        return [group]
    groups = {id(a): _Group(version, total, a, [a] if covers else []) for a in anchors}
    by_id = {a.message_id: a for a in anchors if a.message_id}
    by_time = sorted(anchors, key=mail_time)
    for patch in patches:
        if any(patch.mail is a for a in anchors):
            groups[id(patch.mail)].patches[patch.index].append(patch)
            continue
        parent = thread.first_of(patch.mail, by_id)
        if parent is not None:
            groups[id(by_id[parent])].patches[patch.index].append(patch)
            continue
        sent = mail_time(patch.mail)
        anchor = next((a for a in reversed(by_time) if mail_time(a) <= sent), by_time[0])
        groups[id(anchor)].patches[patch.index].append(patch)
        groups[id(anchor)].threaded = False
    return list(groups.values())


def _choice(groups: list[_Group], source: str) -> str:
    """The warning naming the sendings not taken; same-version ones by id and date."""
    chosen = groups[-1]
    versions = [g.version for g in groups]
    named = versions.count(chosen.version) > 1
    others = ", ".join(g.describe(named) for g in reversed(groups[:-1]))
    if named:
        why = "threaded to its cover" if chosen.threaded else "sent"
        return f"{source} also holds {others}; using {chosen.describe(True)}, {why} and the latest"
    newest = max(versions)
    why = "newest complete" if chosen.version < newest else "newest"
    return f"{source} also holds {others}; using {chosen.describe()}, the {why}"


def distinct_changes(found: Sequence[PatchMail]) -> list[PatchMail]:
    """The patches of one slot that change different things: a resend re-encoded
    (CRLF, transfer encoding, whitespace) has the same ``git patch-id`` and is one."""
    distinct: list[PatchMail] = []
    for patch in found:
        for i, kept in enumerate(distinct):
            if same_change(kept.diff, patch.diff):
                distinct[i] = patch  # keep the last one sent
                break
        else:
            distinct.append(patch)
    return distinct


def same_change(a: str, b: str) -> bool:
    if a == b:
        return True
    if _squeeze(a) == _squeeze(b):
        return True
    ids = diff_patch_id(a), diff_patch_id(b)
    return ids[0] is not None and ids[0] == ids[1]


@functools.lru_cache(maxsize=1024)  # a slot's copies are compared pairwise, more than once
def diff_patch_id(diff: str) -> str | None:
    """``git patch-id --stable`` of one diff (git needs no repository for it); None
    when git finds no change in it."""
    out = git(Path(tempfile.gettempdir()), "patch-id", "--stable", input=diff.encode())
    return out.split()[0] if out.strip() else None


def _squeeze(diff: str) -> str:
    return "\n".join(line.rstrip() for line in diff.replace("\r", "").splitlines())


def _build(group: _Group) -> ParsedSeries:
    warnings: list[str] = []
    slots: list[PatchMail | None] = [None] * group.total
    duplicates = []
    for index, found in sorted(group.patches.items()):
        distinct = distinct_changes(found)
        if len(distinct) > 1:
            duplicates.append(index)
            warnings.append(f"patch {index} appears {len(distinct)} times; kept the last one")
        elif len(found) > 1:
            warnings.append(f"patch {index} appears {len(found)} times with the same diff")
        slots[index - 1] = distinct[-1]
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


def _add_trailers(series: ParsedSeries, replies: list[Mail], thread: Thread) -> None:
    ids = {p.mail.message_id: p.index for p in series.patches if p.mail.message_id}
    cover = series.cover.message_id if series.cover else None
    collected = collect_trailers(ids, cover, replies, thread)
    without_present(collected, {p.index: p.mail.body for p in series.patches})
    series.trailers = {n: t for n, t in collected.by_patch.items() if t}
    if collected.ignored:
        count = len(collected.ignored)
        series.warnings.append(
            f"ignored {count} trailer{'s' if count > 1 else ''} not given by the sender: "
            + "; ".join(collected.ignored[:3])
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
