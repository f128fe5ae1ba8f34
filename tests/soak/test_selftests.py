# SPDX-License-Identifier: Apache-2.0
"""What the kernel's selftests mean for a verdict: a failing program is a finding about
the kernel naming it, one the host cannot run (skipped every round) is ours."""

from __future__ import annotations

from farm.ending import Cause
from farm.soak.selftests import judge, parse_results

DIR = "/var/tmp/farm/run-7"


def tap(round_: int, *lines: str) -> str:
    return "".join(f"{DIR}/selftests-{round_}.tap:{line}\n" for line in lines)


def test_results_are_read_per_round_with_their_directive() -> None:
    text = tap(
        2, "ok 1 selftests: mm: madv_populate", "not ok 2 selftests: mm: khugepaged # exit=1"
    )
    text += tap(10, "ok 1 selftests: mm: madv_populate", "ok 2 selftests: mm: soft-dirty # SKIP")
    results = parse_results(text + "grep: stray line\n")
    assert [(r.round, r.name, r.status, r.why) for r in results] == [
        (2, "selftests: mm: madv_populate", "ok", ""),
        (2, "selftests: mm: khugepaged", "fail", "exit=1"),
        (10, "selftests: mm: madv_populate", "ok", ""),
        (10, "selftests: mm: soft-dirty", "skip", "SKIP"),
    ]


def test_rounds_where_everything_passes_are_a_tally_and_no_finding() -> None:
    text = "".join(
        tap(r, "ok 1 selftests: mm: madv_populate", "ok 2 selftests: mm: userfaultfd anon 20 16")
        for r in (1, 2, 3)
    )
    tally, findings, notes = judge(parse_results(text), cut_short=False)
    assert (tally.rounds, tally.ok, tally.skipped, tally.failed) == (3, 6, 0, 0)
    assert findings == [] and notes == []


def test_a_failing_program_is_a_selftest_finding_naming_it_and_its_rounds() -> None:
    text = tap(1, "ok 1 selftests: mm: khugepaged")
    text += tap(2, "not ok 1 selftests: mm: khugepaged # timeout")
    text += tap(3, "not ok 1 selftests: mm: khugepaged # exit=1")
    tally, [finding], _ = judge(parse_results(text), cut_short=False)
    assert finding.cause == Cause.SELFTEST and finding.test == "selftests: mm: khugepaged"
    assert finding.text == (
        "selftest selftests: mm: khugepaged failed in 2 of 3 rounds (first in round 2: timeout)"
    )
    assert tally.failed == 2 and tally.ok == 1


def test_a_program_skipped_in_every_round_is_ours_and_named() -> None:
    text = tap(1, "ok 1 selftests: mm: soft-dirty # SKIP", "ok 2 selftests: mm: map_populate")
    text += tap(2, "ok 1 selftests: mm: soft-dirty # SKIP", "ok 2 selftests: mm: map_populate")
    _, [finding], notes = judge(parse_results(text), cut_short=False)
    assert finding.cause == Cause.INFRA and finding.test == "selftests: mm: soft-dirty"
    assert "the host cannot run it" in finding.text and notes == []


def test_a_program_skipped_in_some_rounds_only_is_a_note() -> None:
    text = tap(1, "ok 1 selftests: mm: soft-dirty # SKIP") + tap(
        2, "ok 1 selftests: mm: soft-dirty"
    )
    _, findings, notes = judge(parse_results(text), cut_short=False)
    assert findings == []
    assert notes == ["selftest selftests: mm: soft-dirty skipped in 1 of 2 rounds"]


def test_no_complete_round_is_ours_unless_a_crash_or_hang_cut_the_soak_short() -> None:
    _, [finding], _ = judge([], cut_short=False)
    assert finding.cause == Cause.INFRA and "no round" in finding.text
    assert judge([], cut_short=True)[1] == []
