# SPDX-License-Identifier: Apache-2.0
"""`farm crash parse`: human and --json output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from farmcli import run

DEMO = Path(__file__).with_name("fixtures") / "deferred_split_list_del.log"


def test_json_lists_each_crash_with_title_kind_frames_and_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "crash", "parse", "--json", str(DEMO))
    assert code == 0
    [crash] = json.loads(out)["crashes"]
    assert crash["title"] == "BUG: corrupted list in deferred_split_scan"
    assert crash["kind"] == "BUG"
    assert crash["corrupted"] is False
    assert crash["frames"][0] == "deferred_split_scan"
    assert crash["start_line"] == 4
    assert crash["file"] == str(DEMO)


def test_json_is_an_empty_list_and_exit_zero_without_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = tmp_path / "boot.log"
    quiet.write_text("[    0.000000] Linux version 6.1.0\n")
    code, out, _ = run(capsys, "crash", "parse", "--json", str(quiet))
    assert (code, json.loads(out)) == (0, {"crashes": []})


def test_human_output_names_file_line_and_title(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crash", "parse", str(DEMO))
    assert code == 0
    assert out.startswith(f"{DEMO}:4: BUG: corrupted list in deferred_split_scan (BUG, ")


def test_a_missing_log_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "crash", "parse", str(tmp_path / "nope.log"))
    assert code == 1
    assert "cannot read console log" in err and "nope.log" in err


def test_repeats_of_a_title_are_listed_once_with_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "serial.log"
    log.write_text(DEMO.read_text() * 3)
    code, out, _ = run(capsys, "crash", "parse", str(log))
    assert code == 0
    [line] = out.splitlines()
    assert line.startswith(f"{log}:4: BUG: corrupted list in deferred_split_scan")
    assert line.endswith(" x3")
    code, out, _ = run(capsys, "crash", "parse", "--json", str(log))
    assert [c["start_line"] for c in json.loads(out)["crashes"]] == [4, 52, 100]


def test_the_report_is_shown_with_terminal_escapes_defused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "serial.log"
    hostile = "\x1b]0;owned\x07\x1b[2J\x9b31m"  # set the title, clear the screen, C1 CSI
    log.write_text(DEMO.read_text().replace("Comm: kswapd0", f"Comm: kswapd0\t{hostile}", 1))
    code, out, _ = run(capsys, "crash", "parse", "--report", str(log))
    assert code == 0
    # CSI sequences (colours, clearing) are console noise the parser strips; the rest
    # is shown defused.
    assert r"Comm: kswapd0" + "\t" + r"\x1b]0;owned\x07\x9b31m" in out
    assert not any(c in out for c in "\x1b\x07\x9b\r"), "nothing reaches the terminal raw"
    _, plain, _ = run(capsys, "crash", "parse", "--report", str(DEMO))
    assert out.count("\n") == plain.count("\n"), "newlines stay newlines"


def test_the_report_keeps_the_diagnostic_line_printed_before_cut_here(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = Path(__file__).resolve().parents[1] / "fixtures/console/demo_list_corruption.log"
    _, out, _ = run(capsys, "crash", "parse", "--report", str(demo))
    report = out.split("kernel BUG at lib/list_debug.c:53!", 1)[0]
    assert "list_del corruption, ffffea0000118098->next is LIST_POISON1" in report


def test_a_corrupted_report_says_why_in_the_listing_and_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The robot's real excerpt stops right after "Call Trace:": the stack is missing.
    consoles = Path(__file__).resolve().parents[1] / "fixtures/consoles"
    log = consoles / "lkp_dmesg_x_xfs_asswarn_with_user_lines.log"
    _, out, _ = run(capsys, "crash", "parse", str(log))
    assert "WARNING in asswarn [corrupted: the report has no stack frames" in out
    _, out, _ = run(capsys, "crash", "parse", "--json", str(log))
    [crash] = json.loads(out)["crashes"]
    assert crash["corrupted"] and crash["corrupted_reason"].startswith("the report has no stack")
