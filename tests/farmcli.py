# SPDX-License-Identifier: Apache-2.0
"""``farm ARGS...`` run in this process, for tests of the command line."""

from __future__ import annotations

import pytest

from farm.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``farm ARGS...``."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
