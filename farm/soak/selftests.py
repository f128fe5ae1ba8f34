# SPDX-License-Identifier: Apache-2.0
"""What the kernel's own selftests said, read from the host and judged.

A load with ``selftests`` (jobs/loads/mm-selftests.toml) runs its programs round after
round and writes one kselftest-style TAP file per complete round,
``$FARM_DIR/selftests-<round>.tap``::

    TAP version 13
    1..9
    ok 1 selftests: vm: madv_populate
    ok 2 selftests: vm: soft-dirty # SKIP
    not ok 3 selftests: vm: khugepaged # exit=1

(a round still running when the soak ends has no file: it is not judged). What a
result means for the verdict:

- ``not ok``: the program failed on the kernel under test: a SELFTEST finding naming
  it (the kernel's fault, FAIL), with the rounds it failed in;
- ``ok ... # SKIP`` in every round (exit status 4, kselftest's skip): the program says
  the host cannot run it, which the load's requirements should have caught: an INFRA
  finding naming it; skipped in some rounds only, a note;
- no complete round at all in a soak that was not cut short: an INFRA finding (a
  round takes longer than the soak).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from farm.ending import Cause, Finding, SelftestTally
from farm.hosts.base import Transport

_RESULT = re.compile(
    r"^.*/selftests-(?P<round>\d+)\.tap:(?P<not>not )?ok \d+ (?P<name>[^#]*?)\s*(?:# (?P<why>.*))?$"
)


@dataclass(frozen=True)
class Result:
    round: int
    name: str  # "selftests: vm: madv_populate"
    status: str  # "ok", "skip" or "fail"
    why: str  # the TAP directive: "exit=1", "timeout", "SKIP"


def read_results(transport: Transport, run_dir: str) -> str:
    """The result lines of every complete round, each prefixed by its file's path."""
    command = f"grep -H -E '^(not )?ok ' {run_dir}/selftests-*.tap 2>/dev/null || true"
    return transport.run(command).stdout


def parse_results(text: str) -> list[Result]:
    results = []
    for line in text.splitlines():
        if match := _RESULT.match(line.strip()):
            why = match["why"] or ""
            status = "fail" if match["not"] else "skip" if why.startswith("SKIP") else "ok"
            results.append(Result(int(match["round"]), match["name"], status, why))
    return sorted(results, key=lambda r: r.round)


def judge(
    results: list[Result], *, cut_short: bool
) -> tuple[SelftestTally, list[Finding], list[str]]:
    """The tally, the findings and the notes of a run's selftest results."""
    rounds = sorted({r.round for r in results})
    tally = SelftestTally(
        rounds=len(rounds),
        ok=sum(r.status == "ok" for r in results),
        skipped=sum(r.status == "skip" for r in results),
        failed=sum(r.status == "fail" for r in results),
    )
    if not rounds:
        if cut_short:
            return tally, [], []
        text = "infrastructure: the selftests completed no round (a round outlasts the soak)"
        return tally, [Finding(cause=Cause.INFRA, text=text)], []
    by_name: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_name[result.name].append(result)
    findings, notes = [], []
    for name, seen in by_name.items():
        failed = [r for r in seen if r.status == "fail"]
        skipped = [r for r in seen if r.status == "skip"]
        if failed:
            first = failed[0]
            text = (
                f"selftest {name} failed in {len(failed)} of {len(seen)} rounds "
                f"(first in round {first.round}: {first.why or 'failed'})"
            )
            findings.append(Finding(cause=Cause.SELFTEST, text=text, test=name))
        elif skipped and len(skipped) == len(seen):
            text = f"infrastructure: selftest {name} skipped in every round: the host cannot run it"
            findings.append(Finding(cause=Cause.INFRA, text=text, test=name))
        elif skipped:
            notes.append(f"selftest {name} skipped in {len(skipped)} of {len(seen)} rounds")
    return tally, findings, notes
