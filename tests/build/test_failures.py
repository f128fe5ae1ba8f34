# SPDX-License-Identifier: Apache-2.0
"""Whose fault a failed build is, read from make's output the way a build prints it."""

from __future__ import annotations

import signal
from pathlib import Path

from farm.build.failures import classify

SRC = Path("/cache/build/linux-1234/src")
OUT = Path("/cache/build/linux-1234/out-x86_64-abcd")


def test_a_compile_error_is_the_kernels_fault_and_names_file_and_line() -> None:
    log = [
        "  CC      mm/vmstat.o\n",
        "../src/mm/vmstat.c:2201:20: error: expected expression before ';' token\n",
        " 2201 | int farm_broken = ;\n",
        "make[3]: *** [../src/scripts/Makefile.build:250: mm/vmstat.o] Error 1\n",
    ]
    failure = classify(log, 2, SRC, OUT)
    assert failure.fault == "kernel"
    assert failure.message == (
        "does not compile: mm/vmstat.c:2201: error: expected expression before ';' token"
    )
    assert failure.lines[0].startswith("mm/vmstat.c:2201:20: error:")
    assert failure.lines[1] == "make[3]: *** [scripts/Makefile.build:250: mm/vmstat.o] Error 1"


def test_a_link_error_is_the_kernels_fault() -> None:
    log = ["ld: mm/swap.o: in function `f':\n", "swap.c:(.text+0x1): undefined reference to `g'\n"]
    failure = classify(log, 2, SRC, OUT)
    assert failure.fault == "kernel" and "undefined reference to `g'" in failure.message


def test_a_full_disk_a_missing_tool_and_a_kill_are_ours() -> None:
    full = classify(["/usr/bin/ld: final link failed: No space left on device\n"], 2, SRC, OUT)
    assert full.fault == "infra" and full.message.startswith("the disk is full:")
    tool = classify(["/bin/sh: 1: flex: not found\n"], 2, SRC, OUT)
    assert tool.fault == "infra" and "a tool is missing" in tool.message
    killed = classify(["  CC      mm/swap.o\n"], -signal.SIGKILL, SRC, OUT)
    assert killed.fault == "infra" and killed.message == "make was killed by SIGKILL"


def test_a_selftest_needing_a_library_the_controller_lacks_is_ours() -> None:
    header = classify(
        ["mlock-random-test.c:8:10: fatal error: sys/capability.h: No such file or directory\n"],
        2,
        SRC,
        OUT,
    )
    assert header.fault == "infra" and header.message.startswith("a library header is missing:")
    library = classify(
        ["/usr/bin/ld: cannot find -lnuma: No such file or directory\n"], 2, SRC, OUT
    )
    assert library.fault == "infra" and library.message.startswith("a static library is missing:")
