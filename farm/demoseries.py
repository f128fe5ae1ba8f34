# SPDX-License-Identifier: Apache-2.0
"""Generate the demo's 28-patch RFC series as an mbox, from the recipes in examples/series/.

Each recipe (NN-slug.toml) is one patch: subject, author, commit message and edits that
find an exact snippet of code in a file and replace it. The edits are applied in a
throw-away clone of the tree and committed one by one, then ``git format-patch`` writes
the series, so the mbox is real git output that ``git am`` applies. Dates, identities
and Message-IDs are fixed, so the same tree always gives the same bytes.

    python -m farm.demoseries --tree ~/.cache/farm/linux-source-6.1 --out series.mbox [--json]

examples/make_series.py runs the same. The recipes are package data (farm.data), so an
installed farm generates the series without the source tree. docs/demo-series.md says
what each patch does and which one breaks the kernel.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import re
import sys
import tempfile
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from farm.data import demo_series_dir
from farm.errors import FarmError, UserError
from farm.git import git, resolve

RECIPES = demo_series_dir()
# Message-IDs are <20261126.N.farm-demo@example.org>, N = 0 for the cover letter.
MSGID_FORMAT = "<20261126.{n}.farm-demo@example.org>"
SUBJECT_PREFIX = "PATCH RFC"
_FIRST_DATE = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


_M = TypeVar("_M", bound=BaseModel)


class Edit(BaseModel):
    """Find ``find`` (exact text, once) in ``file`` and put ``replace`` in its place."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    file: str
    find: str
    replace: str


class Recipe(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    subject: str
    author: str
    message: str
    edit: tuple[Edit, ...]
    path: Path = Path()


class Cover(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    subject: str
    author: str
    body: str


def load_recipes(directory: Path = RECIPES) -> tuple[Cover, list[Recipe]]:
    """The cover letter and the patch recipes, in file-name order."""
    cover = _parse(Cover, directory / "cover.toml")
    paths = sorted(directory.glob("[0-9][0-9]-*.toml"))
    return cover, [_parse(Recipe, path).model_copy(update={"path": path}) for path in paths]


def _parse(model: type[_M], path: Path) -> _M:
    try:
        return model.model_validate(_read_toml(path))
    except ValidationError as exc:
        raise UserError(f"recipe {path} is malformed: {exc}") from exc


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read recipe {path}: {exc}") from exc


def apply_edit(tree: Path, edit: Edit, recipe: Recipe) -> None:
    """Replace the one occurrence of the edit's anchor, or name the file and the anchor."""
    target = tree / edit.file
    try:
        text = target.read_text()
    except FileNotFoundError as exc:
        raise UserError(
            f"{recipe.path.name}: {edit.file} does not exist in this tree",
            hint="the recipes are written against Debian's linux-source 6.1",
        ) from exc
    count = text.count(edit.find)
    if count != 1:
        # The snippet's first line that says something (not a lone '/*' or '}').
        anchor = next(ln.strip() for ln in edit.find.splitlines() if any(c.isalnum() for c in ln))
        where = "is missing from" if count == 0 else f"occurs {count} times in"
        raise UserError(
            f"{recipe.path.name}: anchor {anchor!r} {where} {edit.file}",
            hint=f"update the recipe's `find` to the code now in {edit.file}",
        )
    target.write_text(text.replace(edit.find, edit.replace))


def commit_recipes(tree: Path, recipes: list[Recipe]) -> None:
    """One commit per recipe, with fixed identities and dates so the ids are reproducible."""
    for n, recipe in enumerate(recipes, start=1):
        for edit in recipe.edit:
            apply_edit(tree, edit, recipe)
        # -f: the Debian tarball's .gitignore hides every top-level directory.
        git(tree, "add", "-f", "--", *sorted({e.file for e in recipe.edit}))
        name, mail = email.utils.parseaddr(recipe.author)
        date = (_FIRST_DATE + timedelta(minutes=n)).isoformat()
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": mail,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": mail,
            "GIT_COMMITTER_DATE": date,
        }
        message = (
            f"{recipe.subject}\n\n{recipe.message.strip()}\n\nSigned-off-by: {recipe.author}\n"
        )
        git(tree, "commit", "-q", "--no-verify", "-F", "-", input=message.encode(), env=env)


def format_series(tree: Path, base: str, count: int, cover: Cover, outdir: Path) -> list[Path]:
    """``git format-patch`` with a cover letter; returns the files, cover first."""
    out = git(
        tree,
        "format-patch",
        "--cover-letter",
        "--thread=shallow",
        "--no-signature",
        "--zero-commit",
        f"--subject-prefix={SUBJECT_PREFIX}",
        f"--base={base}",
        "-o",
        str(outdir),
        f"-{count}",
    )
    files = [Path(line) for line in out.splitlines() if line.strip()]
    files[0].write_text(_fill_cover(files[0].read_text(), cover))
    return files


def _fill_cover(text: str, cover: Cover) -> str:
    text = text.replace("*** SUBJECT HERE ***", cover.subject)
    text = text.replace("*** BLURB HERE ***", cover.body.strip())
    name, mail = email.utils.parseaddr(cover.author)
    text = re.sub(r"^From: .*$", f"From: {name} <{mail}>", text, count=1, flags=re.M)
    # git dates the cover letter now; the series is older than its first patch.
    date = email.utils.format_datetime(_FIRST_DATE)
    return re.sub(r"^Date: .*$", f"Date: {date}", text, count=1, flags=re.M)


def rethread(files: list[Path]) -> list[str]:
    """Fixed Message-IDs, every patch a reply to the cover letter; returns the ids in order."""
    ids = [MSGID_FORMAT.format(n=n) for n in range(len(files))]
    for n, path in enumerate(files):
        head, sep, body = path.read_text().partition("\n\n")
        lines = [
            line
            for line in head.splitlines()
            if not line.lower().startswith(("message-id:", "in-reply-to:", "references:"))
        ]
        lines.append(f"Message-ID: {ids[n]}")
        if n:
            lines += [f"In-Reply-To: {ids[0]}", f"References: {ids[0]}"]
        path.write_text("\n".join(lines) + sep + body)
    return ids


def make_series(tree: Path, out: Path, recipes_dir: Path = RECIPES) -> dict[str, object]:
    """Write the series mbox for ``tree``'s HEAD to ``out``; returns what was written."""
    cover, recipes = load_recipes(recipes_dir)
    base = resolve(tree, "HEAD")
    with tempfile.TemporaryDirectory(prefix="farm-series.") as tmp:
        work = Path(tmp) / "tree"
        git(Path(tmp), "clone", "-q", "--shared", "--no-checkout", str(tree.resolve()), str(work))
        git(work, "checkout", "-q", "--detach", base)
        commit_recipes(work, recipes)
        files = format_series(work, base, len(recipes), cover, Path(tmp) / "patches")
        ids = rethread(files)
        mbox = "".join(path.read_text() for path in files)
    staging = out.with_name(f".{out.name}.tmp")
    staging.write_text(mbox)
    staging.replace(out)
    total = len(recipes)
    subjects = [f"[{SUBJECT_PREFIX} {n:02d}/{total}] {r.subject}" for n, r in enumerate(recipes, 1)]
    return {"mbox": str(out), "base_commit": base, "message_ids": ids, "subjects": subjects}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="git tree of linux-source 6.1")
    parser.add_argument("--out", type=Path, required=True, help="mbox file to write")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = make_series(args.tree, args.out)
    except FarmError as exc:
        print(f"make_series: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(result["mbox"])
        ids = result["message_ids"]
        assert isinstance(ids, list)
        for n, msgid in enumerate(ids):
            print(f"{n:02d} {msgid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
