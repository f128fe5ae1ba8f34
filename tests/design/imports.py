# SPDX-License-Identifier: Apache-2.0
"""Read farm's import graph from the source (every import, inside functions too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FARM = Path(__file__).resolve().parents[2] / "farm"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. farm.scheduler.tasks
    target: str  # what it imports, e.g. farm.store.runs or celery
    line: int

    @property
    def source_unit(self) -> str:
        return unit(self.module)

    @property
    def target_unit(self) -> str:
        return unit(self.target)


def unit(module: str) -> str:
    """A package of farm (``farm.scheduler``) or a top-level module (``farm.config``);
    a third-party module's top-level name (``celery``)."""
    parts = module.split(".")
    if parts[0] != "farm":
        return parts[0]
    return ".".join(parts[:2])


def module_name(path: Path, root: Path = FARM) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = FARM) -> Iterator[Import]:
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from farm.scheduler import health` imports the module farm.scheduler.health
                candidate = f"{base}.{alias.name}"
                is_module = (root.parent / Path(*candidate.split("."))).with_suffix(".py").exists()
                yield Import(module, candidate if is_module else base, node.lineno)


def all_imports(root: Path = FARM) -> list[Import]:
    return [
        imp
        for path in sorted(root.rglob("*.py"))
        if "migrations" not in path.parts
        for imp in imports_of(path, root)
    ]
