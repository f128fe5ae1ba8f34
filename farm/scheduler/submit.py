# SPDX-License-Identifier: Apache-2.0
"""``farm submit``'s work: mail in, a stored series and one commit per patch out.

The order keeps failures clean and the database lock short: read and check the mail
(no git, no database), resolve tree and base, apply in a worktree under a temporary
name, then record everything in one transaction and give the worktree its final name.
Any failure removes the worktree and rolls the transaction back. Two submits of one
series at once store it once: the database refuses the second series row and the
later submit reuses what the first stored.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from farm.config import FarmConfig
from farm.errors import UserError
from farm.git import is_git_repo, resolve
from farm.intake.apply import Worktree, apply_patches, patch_ids
from farm.intake.guessbase import guess_base
from farm.intake.hunks import check_hunks
from farm.intake.lore import fetch_thread, lore_target
from farm.intake.mbox import Mail, mails_from_bytes, read_mails
from farm.intake.series import ParsedSeries, PatchMail, group_series
from farm.intake.trailers import Trailer
from farm.scheduler.api import submit_runs
from farm.store import Store
from farm.store.series import Application, AppliedCommit, Patch, Series


@dataclass
class IntakeResult:
    """What intake did (or, with ``dry_run``, would do)."""

    series: ParsedSeries
    selected: list[int]
    dry_run: bool
    tree: Path | None = None
    base: str | None = None
    series_id: int | None = None
    application_id: int | None = None
    branch: str | None = None
    worktree: Path | None = None
    commits: dict[int, str] = field(default_factory=dict)
    reused: bool = False

    @property
    def warnings(self) -> list[str]:
        return self.series.warnings

    @property
    def head(self) -> str | None:
        """The commit with every selected patch applied."""
        return self.commits[self.selected[-1]] if self.commits else self.base

    def to_json(self) -> dict[str, Any]:
        selected = [p for p in self.series.patches if p.index in self.selected]
        data = self.series.summary(selected)
        if not self.dry_run:
            data.update(
                series_id=self.series_id,
                application_id=self.application_id,
                reused=self.reused,
                tree=str(self.tree),
                base=self.base,
                branch=self.branch,
                worktree=str(self.worktree),
                commits={str(i): sha for i, sha in self.commits.items()},
            )
        return data


def load_mails(
    config: FarmConfig,
    source: Path | str,
    stdin: Callable[[], bytes] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Mail], str]:
    """The mail ``source`` names, and how to name the source: ``-`` (standard input,
    read by ``stdin``), an existing path, a lore URL or a Message-ID (fetched)."""
    if source == "-" and stdin is not None:
        return mails_from_bytes(stdin(), "<stdin>"), "<stdin>"
    path = Path(source)
    target = None if path.exists() else lore_target(str(source), config.intake.lore_url)
    if target is None:
        return read_mails(path), str(path.resolve())
    if progress:
        progress(f"fetching {target.url}")
    mbox = fetch_thread(target, config.intake.lore_timeout)
    return mails_from_bytes(mbox, target.url), target.url


def intake(
    config: FarmConfig,
    store: Store | None,
    source: Path | str,
    *,
    upto: int | None = None,
    patches: list[int] | None = None,
    base: str | None = None,
    guess: bool = False,
    tree: Path | None = None,
    allow_incomplete: bool = False,
    dry_run: bool = False,
    stdin: Callable[[], bytes] | None = None,
    progress: Callable[[str], None] | None = None,
) -> IntakeResult:
    """Read the series ``source`` names (see load_mails); unless ``dry_run``, store it
    and apply it. ``guess``: without --base or ``base-commit:``, find the base from
    the patches' blob ids (``b4 am --guess-base``).

    ``progress`` hears about the slow steps (a fetch, a worktree of a kernel tree).
    """
    limit = config.intake.max_patches
    mails, name = load_mails(config, source, stdin, progress)
    series = group_series(mails, source=name, max_patches=limit)
    series.check_complete(allow_incomplete)
    chosen = series.select(upto, patches)
    check_hunks(chosen)  # the dry run refuses what git am would
    result = IntakeResult(series, [p.index for p in chosen], dry_run)
    if dry_run:
        return result
    if store is None:
        raise UserError("a database is needed to submit without --dry-run")
    result.tree = resolve_tree(config, tree)
    if base is None and series.base_commit is None and guess:
        base = _guessed_base(result.tree, series, progress)
    result.base = resolve(result.tree, resolve_base_ref(config, result.tree, base, series))
    ids = patch_ids(result.tree, series.patches)
    content = content_hash(series, ids)
    if _reuse(store, result, content):
        return result
    if progress:
        progress(
            f"applying {len(chosen)} patches on {result.base[:12]} in a worktree of {result.tree}"
        )
    temporary = f"tmp-{uuid.uuid4().hex[:12]}"
    work = Worktree(result.tree, config.data_dir / "worktrees" / temporary, f"farm/{temporary}")
    commits = apply_patches(work, result.base, chosen)
    try:
        _store(store, result, work, commits, ids, content, source=name)
    except BaseException:
        work.remove()
        if result.worktree and result.branch:  # renamed already
            Worktree(result.tree, result.worktree, result.branch).remove()
        raise
    return result


def _guessed_base(tree: Path, series: ParsedSeries, progress: Callable[[str], None] | None) -> str:
    found = guess_base(tree, series.patches)
    if found is None:
        raise UserError(
            f"series {series.label} names no base-commit and no commit of {tree} holds "
            "the files its diffs start from",
            hint="farm submit SERIES --base REF   # fetch the tree the series was written on",
        )
    message = f"guessed base {found[:12]}: it holds every file the series starts from"
    series.warnings.append(message)
    if progress:
        progress(message)
    return found


def resolve_tree(config: FarmConfig, tree: Path | None) -> Path:
    """--tree, else the first configured tree, else the current directory if it is a repo."""
    configured = config.tree()
    candidate = tree or (configured.path if configured else None)
    if candidate is None and is_git_repo(Path.cwd()):
        candidate = Path.cwd()
    if candidate is None:
        raise UserError(
            "no kernel tree to apply the series to: no --tree, no [[trees]] in the "
            "configuration and the current directory is not a git repository",
            hint="farm submit SERIES --tree ~/src/linux",
        )
    if not is_git_repo(candidate):
        raise UserError(f"tree {candidate} is not a git repository", hint="--tree ~/src/linux")
    return Path(candidate).resolve()


def resolve_base_ref(config: FarmConfig, tree: Path, base: str | None, series: ParsedSeries) -> str:
    """--base, else the series' ``base-commit:``, else the tree's configured base."""
    configured = next((t.base for t in config.trees if t.path.resolve() == tree), None)
    ref = base or series.base_commit or configured
    if ref is None:
        raise UserError(
            f"series {series.label} names no base-commit and none was given",
            hint="farm submit SERIES --base v6.15-rc5   # or --guess-base to find it in the tree",
        )
    return ref


def content_hash(series: ParsedSeries, ids: dict[int, str]) -> str:
    """A series' identity: its version and the patch-ids of its patches, in order."""
    digest = hashlib.sha256(f"v{series.version}/{series.total}\n".encode())
    for patch in series.patches:
        own = ids.get(patch.index) or hashlib.sha256(patch.mail.raw_body).hexdigest()
        digest.update(f"{patch.index} {own}\n".encode())
    return digest.hexdigest()


def _reuse(store: Store, result: IntakeResult, content: str) -> bool:
    """The same series already applied the same way: say so, and reuse it."""
    with store.session() as session:
        known = session.scalars(
            select(Series).where(Series.content_hash == content).order_by(Series.id)
        ).first()
        if known is None:
            return False
        result.series_id = known.id
        result.series.warnings.append(f"this series was submitted before as series {known.id}")
        for app in known.applications:
            commits = {c.index: c.sha for c in app.commits}
            worktree = Worktree(Path(app.tree), Path(app.worktree or ""), app.branch)
            if (
                Path(app.tree) == result.tree
                and app.base_commit == result.base
                and sorted(commits) == result.selected
                and worktree.exists()
            ):
                result.application_id, result.commits = app.id, commits
                result.branch, result.worktree, result.reused = app.branch, worktree.path, True
                result.series.warnings.append(f"reusing its application {app.id} ({app.branch})")
                return True
    return False


def _store(
    store: Store,
    result: IntakeResult,
    work: Worktree,
    commits: dict[int, str],
    ids: dict[int, str],
    content: str,
    source: str,
) -> None:
    """Record the series and this application of it. A submit of the same series that
    raced this one may have stored it first (content_hash is unique): then this is
    the repeat it would have been a moment later, reusing the stored application or
    adding this one to the stored series."""
    try:
        _record(store, result, work, commits, ids, content, source)
    except IntegrityError:
        # Raised by the series' INSERT, before the worktree got its final name.
        if _reuse(store, result, content):
            work.remove()
            return
        if result.series_id is None:
            raise  # not the series after all
        _record(store, result, work, commits, ids, content, source)


def _record(
    store: Store,
    result: IntakeResult,
    work: Worktree,
    commits: dict[int, str],
    ids: dict[int, str],
    content: str,
    source: str,
) -> None:
    assert result.tree is not None and result.base is not None
    with store.session() as session:
        row = session.get(Series, result.series_id) if result.series_id else None
        if row is None:
            row = _series_row(result.series, ids, content, source)
            session.add(row)
        app = Application(series=row, tree=str(result.tree), base_commit=result.base, branch="")
        session.add(app)
        session.flush()
        result.worktree = work.path.parent / f"series-{row.id}-a{app.id}"
        # Several farms (data directories) may share one kernel tree: their series ids
        # collide, so the branch is namespaced by the database it is recorded in.
        farm_id = hashlib.sha256(store.url.encode()).hexdigest()[:8]
        result.branch = f"farm/{farm_id}/series-{row.id}-v{row.version}-a{app.id}"
        work.rename(result.worktree, result.branch)
        result.series_id, result.application_id, result.commits = row.id, app.id, commits
        app.branch, app.worktree = result.branch, str(result.worktree)
        app.commits = [AppliedCommit(index=i, sha=sha) for i, sha in commits.items()]


def _series_row(series: ParsedSeries, ids: dict[int, str], content: str, source: str) -> Series:
    return Series(
        title=series.title,
        version=series.version,
        total=series.total,
        base_commit=series.base_commit,
        cover_message_id=series.cover.message_id if series.cover else None,
        change_id=series.change_id,
        prerequisite_patch_ids=series.prerequisite_patch_ids,
        source=source,
        content_hash=content,
        patches=[
            _patch_row(p, ids.get(p.index), series.trailers.get(p.index, []))
            for p in series.patches
        ],
    )


def _patch_row(patch: PatchMail, patch_id: str | None, trailers: list[Trailer]) -> Patch:
    mail = patch.mail
    return Patch(
        index=patch.index,
        subject=patch.subject,
        full_subject=mail.subject,
        message_id=mail.message_id,
        in_reply_to=mail.in_reply_to,
        references=list(mail.references),
        author=patch.author,
        date=mail.date,
        to=list(mail.to),
        cc=list(mail.cc),
        patch_id=patch_id,
        files=list(patch.files),
        trailers=[t.to_json() for t in trailers],
        raw=mail.raw,
    )


@dataclass
class Submission:
    """What ``farm submit`` did: the series applied and the runs queued for it."""

    intake: IntakeResult
    runs: list[int]


def submit_series(
    config: FarmConfig,
    store: Store,
    source: Path | str,
    *,
    hosts: Sequence[str],
    load: str,
    soak_seconds: float,
    progress: Callable[[str], None] | None = None,
    **selection: Any,
) -> Submission:
    """``farm submit``: read, store and apply the series (``selection``: upto, patches,
    base, tree, allow_incomplete), then queue on each host a baseline (unless a recent
    one exists) and the patched kernel. The CLI and the demo both submit this way."""
    result = intake(config, store, source, progress=progress, **selection)
    assert result.base is not None and result.head is not None
    runs = submit_runs(
        config,
        store,
        hosts=hosts,
        base_commit=result.base,
        commit=result.head,
        upto=result.selected[-1] if result.selected else 0,
        load=load,
        soak_seconds=soak_seconds,
        series_id=result.series_id,
        application_id=result.application_id,
    )
    return Submission(result, runs)
