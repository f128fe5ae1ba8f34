# SPDX-License-Identifier: Apache-2.0
"""farm build: build the kernel of a series prefix (or of any commit), with artefacts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from farm.build import KernelArtifacts, build_kernel, default_fragment, ensure_linux_tree
from farm.build.artifacts import artifacts_dir
from farm.build.kconfig import config_hash, read_fragment
from farm.build.sandbox import for_config
from farm.cli.common import emit_json, get_config, get_store, json_option
from farm.config import FarmConfig
from farm.errors import FarmError, UserError
from farm.git import resolve
from farm.store import Store
from farm.store.builds import record_build
from farm.store.series import Application


@click.command()
@click.argument("series_id", metavar="SERIES", type=int, required=False)
@click.option("--upto", type=click.IntRange(min=0), help="Build base + patches 1..K (0: base).")
@click.option(
    "--config",
    "fragment",
    metavar="FRAGMENT",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Kconfig fragment merged onto tinyconfig (default: jobs/kconfig/soak.config).",
)
@click.option("--commit", metavar="SHA", help="Build this commit instead of a series prefix.")
@click.option(
    "--tree",
    type=click.Path(path_type=Path, file_okay=False),
    help="Git tree of --commit (default: the first configured tree, else linux-source 6.1).",
)
@json_option
@click.pass_context
def build(
    ctx: click.Context,
    series_id: int | None,
    upto: int | None,
    fragment: Path | None,
    commit: str | None,
    tree: Path | None,
    as_json: bool,
) -> None:
    """Build the kernel for patches 1..K of a stored SERIES, or for --commit SHA.

    A (commit, config) built before is a cache hit that builds nothing."""
    config = get_config(ctx)
    store = get_store(ctx)
    if (series_id is None) == (commit is None):
        raise UserError(
            "give either a SERIES id or --commit SHA",
            hint="farm build 3 --upto 2   # or: farm build --commit HEAD --tree ~/linux",
        )
    if series_id is not None:
        tree, commit = _series_commit(store, series_id, upto)
    else:
        tree = tree or _default_tree(config)
    assert commit is not None
    fragment = fragment or _tree_fragment(config, tree) or default_fragment()
    say = None if as_json else _progress()
    try:
        artifacts = build_kernel(
            tree,
            commit,
            data_dir=config.data_dir,
            fragment=fragment,
            progress=say,
            sandbox=for_config(config),
        )
    except FarmError:
        _record(store, config, tree, commit, fragment)
        raise
    _record(store, config, tree, commit, fragment)
    if as_json:
        emit_json(_summary(artifacts))
        return
    for key, value in _summary(artifacts).items():
        click.echo(f"{key:17} {value}")


def _series_commit(store: Store, series_id: int, upto: int | None) -> tuple[Path, str]:
    with store.session() as session:
        application = session.scalar(
            select(Application)
            .where(Application.series_id == series_id)
            .order_by(Application.id.desc())
        )
        if application is None:
            raise UserError(
                f"series {series_id} has not been applied to a tree",
                hint="farm series list   # then: farm submit SERIES.mbox",
            )
        applied = sorted(c.index for c in application.commits)
        upto = max(applied, default=0) if upto is None else upto
        try:
            return Path(application.tree), application.commit_for(upto)
        except KeyError:
            raise UserError(
                f"series {series_id} has no applied patch {upto} "
                f"(applied: {', '.join(map(str, applied)) or 'none'})",
                hint=f"farm build {series_id} --upto {max(applied, default=0)}",
            ) from None


def _default_tree(config: FarmConfig) -> Path:
    configured = config.tree()
    return configured.path if configured else ensure_linux_tree(progress=_progress())


def _tree_fragment(config: FarmConfig, tree: Path) -> Path | None:
    for configured in config.trees:
        if configured.path.resolve() == tree.resolve():
            return configured.config_fragment
    return None


def _record(store: Store, config: FarmConfig, tree: Path, commit: str, fragment: Path) -> None:
    """Mirror the build's metadata.json into the Build table (also for failures)."""
    try:
        directory = artifacts_dir(
            config.data_dir, resolve(tree, commit), config_hash(read_fragment(fragment))
        )
    except FarmError:
        return  # the request itself was bad: there is no build to record
    with store.session() as session:
        record_build(session, directory)


def _progress() -> Callable[[str], None]:
    started = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.0f}s] {message}", err=True)

    return say


def _summary(artifacts: KernelArtifacts) -> dict[str, Any]:
    return {
        "commit": artifacts.commit,
        "config_hash": artifacts.config_hash,
        "release": artifacts.release,
        "build_id": artifacts.build_id,
        "cached": artifacts.cached,
        "incremental": artifacts.incremental,
        "duration_seconds": artifacts.duration_seconds,
        "dir": str(artifacts.dir),
        "bzimage": str(artifacts.bzimage),
        "system_map": str(artifacts.system_map),
        "vmlinux": str(artifacts.vmlinux),
        "config": str(artifacts.config),
        "build_log": str(artifacts.build_log),
    }
