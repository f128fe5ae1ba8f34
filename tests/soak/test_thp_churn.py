# SPDX-License-Identifier: Apache-2.0
"""thp_churn, the THP-splitting helper, built static by farm and run here for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

from farm.soak.load import compile_binary


def test_it_splits_huge_pages_until_its_deadline(tmp_path: Path) -> None:
    binary = compile_binary("thp_churn", tmp_path)
    assert compile_binary("thp_churn", tmp_path) == binary  # cached by source hash
    before = _thp_split_pmd()

    done = subprocess.run([str(binary), "1", "16"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("thp_churn: ") and " rounds of 16 MB" in done.stdout
    if Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().find("[never]") < 0:
        assert _thp_split_pmd() > before  # the splits really happened


def test_it_refuses_a_bad_command_line_with_its_usage(tmp_path: Path) -> None:
    binary = compile_binary("thp_churn", tmp_path)
    for argv in ([], ["soon"], ["10", "1"], ["1", "16", "-1"], ["1", "2", "3", "4", "5"]):
        done = subprocess.run([str(binary), *argv], capture_output=True, text=True, timeout=10)
        assert done.returncode == 2 and "thp_churn" in done.stderr


def _thp_split_pmd() -> int:
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("thp_split_pmd "):
            return int(line.split()[1])
    return 0
