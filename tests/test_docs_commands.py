# SPDX-License-Identifier: Apache-2.0
"""Every `farm ...` command shown in the README and docs/*.md exists: its subcommand
path answers --help, and every option the line uses is one that command takes. The
commands are read from the documents' shell code blocks, so a renamed option or
command cannot leave the documentation behind."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from farm.cli import cli
from farm.cli.common import AliasedOption

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```(\w*)")
SHELLS = {"", "sh", "shell", "bash", "console"}
ASSIGNMENT = re.compile(r"^[A-Z_]+=\S*$")


def shown_commands(document: Path) -> list[list[str]]:
    """The `farm` invocations of a document's shell blocks, as argument lists
    (without `farm`); `[--json]` counts as `--json`, `a|b` as `a`."""
    found = []
    for line in _shell_lines(document.read_text()):
        code = re.split(r"\s#", line, maxsplit=1)[0]  # a comment may hold a ; or a |
        for segment in re.split(r" \| |&&|;", code):
            words = _words(segment.replace("[", " ").replace("]", " "))
            while words and ASSIGNMENT.match(words[0]):
                words.pop(0)  # FARM_CONFIG=... farm status
            if words and Path(words[0]).name == "farm":
                found.append([w.split("|")[0] for w in words[1:]])
    return found


def _shell_lines(text: str) -> list[str]:
    """The lines inside fenced code blocks whose language is a shell (or none); a fence
    closes the block it is in, so a toml block's closing fence opens nothing."""
    lines: list[str] = []
    language: str | None = None  # None: outside any block
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence:
            language = fence.group(1) if language is None else None
        elif language in SHELLS:
            lines.append(line)
    return lines


def _words(text: str) -> list[str]:
    """Shell words; a quote the line splits across segments is taken literally."""
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.partition(" #")[0].split()


def resolve(args: list[str]) -> tuple[list[str], click.Command]:
    """The subcommand path the arguments name, and its command."""
    path: list[str] = []
    command: click.Command = cli
    rest = [a for a in args if not a.startswith("-")]
    while isinstance(command, click.Group) and rest:
        ctx = click.Context(command, info_name=" ".join(["farm", *path]))
        name = rest.pop(0)
        if (name.isdigit() or name.isupper()) and command.get_command(ctx, "start"):
            # farm bisect 42 (or RUN): a run id, routed to farm bisect start
            name = "start"
        sub = command.get_command(ctx, name)
        if sub is None:
            break
        path.append(name)
        command = sub
    return path, command


def shown(param: click.Parameter) -> list[str]:
    """The spellings --help shows: an old spelling kept for scripts is not documented."""
    return param.opts[:1] if isinstance(param, AliasedOption) else param.opts


CASES = [
    pytest.param(doc, args, id=f"{doc.name}: farm {' '.join(args)}")
    for doc in DOCUMENTS
    for args in shown_commands(doc)
]


def test_the_documents_show_farm_commands() -> None:
    shown = {" ".join(resolve(args)[0]) for _, args in (c.values for c in CASES)}
    assert {"up", "down", "submit", "runs list", "bisect list", "config check"} <= shown


@pytest.mark.parametrize(("document", "args"), CASES)
def test_a_documented_command_parses(document: Path, args: list[str]) -> None:
    path, command = resolve(args)
    assert path, f"{document.name}: `farm {' '.join(args)}` names no farm command"
    helped = CliRunner().invoke(cli, [*path, "--help"])
    assert helped.exit_code == 0, helped.output
    known = {"--config", "--help", "-h"} | {o for p in command.params for o in shown(p)}
    options = [a.split("=")[0] for a in args if a.startswith("-") and a != "-"]
    unknown = [o for o in options if o not in known]
    assert unknown == [], f"{document.name}: `farm {' '.join(args)}` uses {unknown}"
