# SPDX-License-Identifier: Apache-2.0
"""Dependency rules of farm's layout, read from the imports in the source (those inside
functions too, so a cycle cannot hide in a lazy import).

The layers, bottom up:

- vocabulary: ``errors``, ``units``, ``ending``, ``config``, ``git``, ``data``;
- stage libraries: ``intake``, ``build``, ``hosts``, ``soak``, ``detect``, ``bisect``
  (the engine), ``report``, ``notify``, and the data they read (``loads``): they take values and
  return values, and know nothing of the store, Celery or the scheduler;
- the record: ``store`` (SQLAlchemy tables, which may hold stage values);
- the one place that decides: ``scheduler`` (run lifecycle, verdicts, bisections,
  host health, requests), which drives the stages;
- the edges: ``metrics`` (the exporter reads the store at scrape time), ``services``
  (local processes), ``supervisor`` (``farm up``), ``api``, ``cli``, ``demo``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .imports import FARM, Import, all_imports, module_name

STAGES = ("intake", "build", "hosts", "soak", "detect", "bisect", "report", "notify", "loads")
VOCABULARY = ("errors", "units", "ending", "config", "git", "data")
DECIDING = ("farm.store", "farm.scheduler", "celery", "kombu", "sqlalchemy", "alembic")
EDGES = ("farm.cli", "farm.api", "farm.demo", "farm.__main__")


def farm_units(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.target.startswith("farm.") and imp.source_unit != imp.target_unit:
            graph.setdefault(imp.source_unit, set()).add(imp.target_unit)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by depth-first search (one per back edge)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def violations(
    imports: list[Import], sources: tuple[str, ...], banned: tuple[str, ...]
) -> list[str]:
    return [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in imports
        if imp.source_unit in sources
        and any(imp.target == b or imp.target.startswith(f"{b}.") for b in banned)
    ]


def task_definitions(root: Path = FARM) -> list[str]:
    """Modules with a function decorated as a Celery task."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for deco in node.decorator_list:
                    target = deco.func if isinstance(deco, ast.Call) else deco
                    name = (
                        target.attr
                        if isinstance(target, ast.Attribute)
                        else getattr(target, "id", "")
                    )
                    if name in ("task", "shared_task"):
                        found.append(module_name(path, root))
    return sorted(set(found))


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_farms_packages_import_each_other_without_cycles(imports: list[Import]) -> None:
    assert cycles(farm_units(imports)) == []


def test_stage_libraries_know_nothing_of_the_store_celery_or_the_scheduler(
    imports: list[Import],
) -> None:
    assert violations(imports, tuple(f"farm.{s}" for s in STAGES), DECIDING) == []


def test_the_crash_parser_and_the_bisect_engine_are_pure(imports: list[Import]) -> None:
    banned = (*DECIDING, "fabric", "paramiko", "farm.hosts")
    assert violations(imports, ("farm.detect", "farm.bisect"), banned) == []


def test_hosts_import_no_store_soak_or_scheduler(imports: list[Import]) -> None:
    banned = ("farm.store", "farm.soak", "farm.scheduler")
    assert violations(imports, ("farm.hosts",), banned) == []


def test_the_vocabulary_imports_no_stage(imports: list[Import]) -> None:
    edges = ("metrics", "services", "supervisor")
    above = tuple(f"farm.{s}" for s in (*STAGES, "store", "scheduler", *edges))
    assert violations(imports, tuple(f"farm.{v}" for v in VOCABULARY), above + EDGES) == []


def test_nothing_below_the_cli_and_the_api_imports_them(imports: list[Import]) -> None:
    below = tuple(unit for unit in {imp.source_unit for imp in imports} if unit not in EDGES)
    assert violations(imports, below, ("farm.cli", "farm.api", "farm.demo")) == []


def test_the_store_does_not_import_the_deciders(imports: list[Import]) -> None:
    assert violations(imports, ("farm.store",), ("farm.scheduler", *EDGES)) == []


def test_one_module_defines_celery_tasks() -> None:
    assert task_definitions() == ["farm.scheduler.tasks"]


def test_one_module_imports_fabric_and_paramiko(imports: list[Import]) -> None:
    users = {imp.module for imp in imports if imp.target.split(".")[0] in ("fabric", "paramiko")}
    assert users == {"farm.hosts.ssh"}


def test_the_rules_catch_a_bad_import_even_inside_a_function(tmp_path: Path) -> None:
    """The checker itself, on a small tree: the crash parser reaching for the store and
    a host module calling up into the scheduler from inside a function."""
    root = tmp_path / "farm"
    files = {
        "__init__.py": "",
        "store/__init__.py": "",
        "detect/__init__.py": "from farm.store import runs\n",
        "hosts/__init__.py": "def boot():\n    from farm.scheduler import tasks\n",
        "scheduler/__init__.py": "",
        "scheduler/tasks.py": "import farm.hosts\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    found = all_imports(root)

    assert violations(found, ("farm.detect", "farm.bisect"), DECIDING) == [
        "farm.detect:1 imports farm.store"
    ]
    assert violations(found, ("farm.hosts",), ("farm.scheduler",)) == [
        "farm.hosts:2 imports farm.scheduler.tasks"
    ]
    assert cycles(farm_units(found)) == [["farm.hosts", "farm.scheduler", "farm.hosts"]]
