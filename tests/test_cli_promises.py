# SPDX-License-Identifier: Apache-2.0
"""What the README promises of every command: lists with filters and --json, errors as
JSON under --json, the documented exit codes, one spelling per idea, `farm config
check` that checks without touching anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from farmcli import run
from report.test_report import seed_store

from farm.cli import COMMANDS, main
from farm.ending import Verdict
from farm.git import git
from farm.hosts import keys
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind, RunState
from farm.store.samples import ConsoleLine


def add_run(store: Store, host: str, verdict: Verdict | None, series: int | None = None) -> int:
    with store.session() as session:
        row = Run(
            kind=RunKind.BASELINE, series_id=series, commit="a" * 40, host=host,
            load="thp-split", soak_seconds=60, verdict=verdict,
            state=RunState.DONE if verdict else RunState.SOAKING,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


# --- lists ---------------------------------------------------------------------------


def test_runs_list_filters_by_series_host_and_verdict(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_store(store)  # series 1 and its run on workstation
    passed = add_run(store, "laptop", Verdict.PASS)
    failed = add_run(store, "laptop", Verdict.FAIL, series=1)
    soaking = add_run(store, "workstation", None)

    def ids(*filters: str) -> list[int]:
        code, out, err = run(capsys, "runs", "list", "--json", *filters)
        assert code == 0, err
        return [r["id"] for r in json.loads(out)]

    assert ids() == [soaking, failed, passed, 1]
    assert ids("--host", "laptop") == [failed, passed]
    assert ids("--verdict", "fail") == [failed]
    assert ids("--series", "1") == [failed, 1]
    assert ids("--series", "1", "--host", "laptop", "--verdict", "FAIL") == [failed]
    assert ids("--state", "soaking") == [soaking]
    code, out, _ = run(capsys, "runs", "list", "--host", "laptop")
    assert code == 0
    assert out.splitlines()[0].split() == [str(failed), "laptop", "baseline", "base",
                                           "series", "1", "done", "FAIL"]  # fmt: skip


def test_runs_list_of_an_unknown_host_names_the_known_ones(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "runs", "list", "--host", "lapotp")
    assert (code, out) == (1, "")
    assert "no host named 'lapotp' in the inventory (known: laptop, workstation)" in err


def test_bisect_list_shows_each_bisection_and_its_verdict(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    bid = seed_store(store)
    code, out, err = run(capsys, "bisect", "list", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["id"], row["run"], row["series"], row["kind"]) == (bid, 1, 1, "crash")
    assert row["regression"].startswith("BUG: ")
    code, out, err = run(capsys, "bisect", "list")
    assert out.startswith(f"   {bid}  run 1     {row['state']:<9} ")


def test_logs_json_has_the_console_lines_crashes_and_verdict(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = add_run(store, "laptop", Verdict.FAIL)
    with store.session() as session:
        session.add_all(
            [
                ConsoleLine(run_id=run_id, host="laptop", ts=float(i), line=f"[    {i}.0] line {i}")
                for i in range(3)
            ]
        )
        session.add(Crash(run_id=run_id, host="laptop", title="BUG: x", kind="BUG",
                          signature="0" * 64, report="BUG: x", uptime_seconds=7.5))  # fmt: skip
    code, out, err = run(capsys, "logs", str(run_id), "--json", "--lines", "2")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "run": run_id,
        "host": "laptop",
        "state": "done",
        "verdict": "FAIL",
        "reasons": [],
        "crashes": [{"title": "BUG: x", "kind": "BUG", "uptime_seconds": 7.5}],
        "lines": ["[    1.0] line 1", "[    2.0] line 2"],
    }


# --- errors ---------------------------------------------------------------------------


def test_under_json_a_users_mistake_is_a_json_object_on_stderr(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "series", "show", "42", "--json")
    assert (code, out) == (1, "")
    assert json.loads(err) == {"error": "no series with id 42", "hint": "farm series list",
                               "exit": 1}  # fmt: skip


def test_under_json_a_usage_error_is_json_too(
    config: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "runs", "list", "--verdict", "MAYBE", "--json")
    assert (code, out) == (1, "")
    error = json.loads(err)
    assert error["exit"] == 1 and error["hint"] == "farm COMMAND --help"
    assert error["error"].startswith("Invalid value for '--verdict': 'MAYBE' is not one of")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def buggy(as_json: bool) -> None:
    raise RuntimeError("the impossible")


def test_under_json_a_bug_is_json_exit_4_naming_the_saved_traceback(
    farm_toml: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(COMMANDS, "buggy", f"{__name__}:buggy")
    code, out, err = run(capsys, "buggy", "--json")
    error = json.loads(err)
    assert (code, out, error["exit"], error["hint"]) == (4, "", 4, None)
    message, _, where = error["error"].partition("; traceback in ")
    assert message == "internal error: RuntimeError: the impossible"
    assert "Traceback (most recent call last)" in Path(where).read_text()


def test_a_report_to_a_missing_directory_is_exit_1_saying_so_without_a_traceback(
    store: Store, capsys: pytest.CaptureFixture[str], farm_toml: Path
) -> None:
    bid = seed_store(store)
    target = "/nonexistent/dir/x.eml"
    code, out, err = run(capsys, "report", str(bid), "-o", target)
    assert (code, out) == (1, "")
    assert err == (
        f"farm: error: cannot write {target}: No such file or directory\n"
        "  hint: check that /nonexistent/dir exists and is writable\n"
    )
    assert not (farm_toml.parent / "data" / "tracebacks").exists()


def test_a_data_dir_that_cannot_be_made_is_the_users_to_fix_not_a_bug(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    farm_toml.write_text('data_dir = "/proc/self/farm"\n')
    for argv in (["series", "list"], ["up"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, ""), err
        assert err.startswith("farm: error: cannot create the "), err
        assert "/proc/" in err and "\n  hint: set data_dir" in err


# --- one name for one idea --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "old"),
    [("exporter", "--address"), ("api", "--host"), ("worker", "--loglevel"),
     ("beat", "--loglevel")],
)  # fmt: skip
def test_servers_take_bind_and_log_level_and_still_parse_the_old_spelling_unshown(
    command: str, old: str
) -> None:
    group = main.__globals__["cli"]
    cmd = group.get_command(click.Context(group), command)
    spellings = {opt for param in cmd.params for opt in param.opts}
    assert old in spellings
    assert {"--bind", "--log-level"} & spellings
    shown = cmd.get_help(click.Context(cmd, info_name=command))
    assert old not in shown.replace("--log-level", "").replace("--bind", "")


# --- farm config check ---------------------------------------------------------------------


def test_config_check_finds_a_missing_tree_a_loose_key_and_an_unrecorded_host(
    farm_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "linux"
    git(tmp_path, "init", "-q", str(good))
    (tmp_path / "plain").mkdir()
    key = tmp_path / "id_ed25519"
    key.write_text("not really a key\n")
    os.chmod(key, 0o644)
    recorded = tmp_path / "known_hosts"
    keys.record_host_key(recorded, "192.0.2.21", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "t")
    farm_toml.write_text(
        farm_toml.read_text()
        + f'[[trees]]\nname = "linux"\npath = "{good}"\n'
        + f'[[trees]]\nname = "plain"\npath = "{tmp_path / "plain"}"\n'
        + f'[[trees]]\nname = "gone"\npath = "{tmp_path / "gone"}"\n'
        + f'[[hosts]]\nname = "t14"\nkind = "ssh"\naddress = "192.0.2.20"\nkey = "{key}"\n'
        + f'known_hosts = "{recorded}"\n'
        + '[[hosts]]\nname = "t15"\nkind = "ssh"\naddress = "192.0.2.21"\n'
        + f'known_hosts = "{recorded}"\n'
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out, err = run(capsys, "config", "check", "--json")
    assert code == 1, err
    found = {(c["level"], c["what"]): c["detail"] for c in json.loads(out)["checks"]}
    assert found[("ok", "tree linux")] == f"{good} is a git repository"
    assert found[("error", "tree plain")] == f"{tmp_path / 'plain'} is not a git repository"
    assert found[("error", "tree gone")] == f"{tmp_path / 'gone'} does not exist"
    assert found[("error", "host t14 key")] == f"{key} is mode 644"
    assert found[("error", "host t14 host key")] == f"192.0.2.20 not in {recorded}"
    assert found[("ok", "host t15 host key")] == f"192.0.2.21 is recorded in {recorded}"
    assert ("ok", "default_load") in found
    assert any(what == "exporter port" for _, what in found)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no trace

    code, out, _ = run(capsys, "config", "check")
    assert code == 1
    assert f"error    host t14 key: {key} is mode 644\n         hint: chmod 600 {key}\n" in out


def test_config_check_of_the_default_config_passes(
    farm_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "config", "check")
    assert code == 0, out + err
    assert out.startswith("# configuration OK, read from: ")
    assert "ok       default_load: kbuild-tmpfs-swap in " in out
