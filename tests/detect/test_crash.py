# SPDX-License-Identifier: Apache-2.0
"""Titles, frames, kinds and the streaming contract of the crash parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.detect.crash import MAX_REPORT_LINES, CrashStream, Kind, parse, unique

FIXTURES = Path(__file__).with_name("fixtures")
DEMO = (FIXTURES / "deferred_split_list_del.log").read_text()


def test_list_corruption_is_titled_by_the_caller_not_the_list_helper() -> None:
    [crash] = parse(DEMO)
    assert crash.title == "BUG: corrupted list in deferred_split_scan"
    assert crash.kind is Kind.BUG
    assert not crash.corrupted
    assert crash.frames[:3] == ["deferred_split_scan", "do_shrink_slab", "shrink_slab"]
    assert crash.start_line == 4  # 1-based: the "kernel BUG at" line
    assert crash.matches("BUG: corrupted list in deferred_split_scan")
    assert crash.matches("bad-access in deferred_split_scan")
    assert not crash.matches("BUG: corrupted list in do_shrink_slab")


def test_the_real_demo_crash_from_an_out_of_tree_build_is_titled_the_same() -> None:
    # make O=<dir> prints the path relative to the output dir: "../src/lib/...".
    real = (Path(__file__).parents[1] / "fixtures/console/demo_list_corruption.log").read_text()
    for log in (real, real.replace("at lib/list_debug.c", "at ../src/lib/list_debug.c")):
        assert parse(log)[0].title == "BUG: corrupted list in deferred_split_scan"


def test_the_fatal_exception_panic_belongs_to_the_oops_it_follows() -> None:
    crashes = parse(DEMO)
    assert [c.title for c in crashes] == ["BUG: corrupted list in deferred_split_scan"]
    # The panic only echoes the oops: it is neither a crash of its own nor report text.
    assert "Kernel panic" not in crashes[0].report


def test_a_log_without_oops_has_no_crash() -> None:
    assert parse("[    0.000000] Linux version 6.1.0\n[    1.2] Run /init as init process\n") == []
    assert parse(b"") == []


WARNING_LOG = """\
[  100.000001] ------------[ cut here ]------------
[  100.000002] WARNING: CPU: 0 PID: 1 at mm/huge_memory.c:3012 split_huge_page_to_list+0x5a/0x90
[  100.000003] Modules linked in:
[  100.000004] RIP: 0010:split_huge_page_to_list+0x5a/0x90
[  100.000005] Call Trace:
[  100.000006]  <TASK>
[  100.000007]  deferred_split_scan+0x2a1/0x3e0
[  100.000008]  do_shrink_slab+0x13f/0x2d0
[  100.000009]  </TASK>
[  100.000010] ---[ end trace 0000000000000000 ]---
"""


def test_warning_is_named_by_the_function_in_its_header() -> None:
    [crash] = parse(WARNING_LOG)
    assert (crash.title, crash.kind, crash.corrupted) == (
        "WARNING in split_huge_page_to_list",
        Kind.WARNING,
        False,
    )


def test_a_report_cut_before_its_stack_is_corrupted() -> None:
    cut = "\n".join(WARNING_LOG.splitlines()[:4])
    [crash] = parse(cut)
    assert crash.title == "WARNING in split_huge_page_to_list"
    assert crash.corrupted


def test_signature_ignores_addresses_and_timestamps_but_not_the_bug() -> None:
    shifted = WARNING_LOG.replace("[  100.", "[  999.").replace("0x5a/0x90", "0x7c/0x90")
    other = WARNING_LOG.replace("deferred_split_scan", "shrink_folio_list")
    assert parse(shifted)[0].signature == parse(WARNING_LOG)[0].signature
    assert parse(other)[0].signature != parse(WARNING_LOG)[0].signature


@pytest.mark.parametrize(
    ("first_line", "title", "kind"),
    [
        ("BUG: soft lockup - CPU#1 stuck for 22s! [stress:300]", "BUG: soft lockup in",
         Kind.SOFT_LOCKUP),
        ("general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP",
         "general protection fault in", Kind.GPF),
        ("BUG: unable to handle page fault for address: ffffc90000a4f000",
         "BUG: unable to handle kernel paging request in", Kind.PAGING_FAULT),
        ("NMI watchdog: Watchdog detected hard LOCKUP on cpu 1", "BUG: hard lockup in",
         Kind.HARD_LOCKUP),
    ],
)  # fmt: skip
def test_fault_kinds_take_the_faulting_function(first_line: str, title: str, kind: Kind) -> None:
    log = (
        f"[  5.000001] {first_line}\n"
        "[  5.000002] RIP: 0010:folio_undo_large_rmappable+0x3c/0x80\n"
        "[  5.000003] Call Trace:\n"
        "[  5.000004]  <TASK>\n"
        "[  5.000005]  deferred_split_scan+0x2a1/0x3e0\n"
        "[  5.000006]  do_shrink_slab+0x13f/0x2d0\n"
        "[  5.000007]  kthread+0xe8/0x120\n"
    )
    [crash] = parse(log)
    assert crash.kind is kind
    assert crash.title.startswith(title)


def test_oom_killer_is_reported_only_when_asked() -> None:
    log = (
        "[ 9.1] stress-ng invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE), order=0\n"
        "[ 9.2] Call Trace:\n"
        "[ 9.3]  <TASK>\n"
        "[ 9.4]  dump_stack_lvl+0x44/0x5c\n"
        "[ 9.5]  oom_kill_process.cold+0xb/0x10\n"
        "[ 9.6]  out_of_memory+0x1fd/0x4c0\n"
        "[ 9.7]  __alloc_pages_slowpath.constprop.0+0xc6b/0xd70\n"
        "[ 9.8]  handle_mm_fault+0xdb/0x2d0\n"
        "[ 9.9]  do_user_addr_fault+0x1b1/0x560\n"
    )
    assert parse(log) == []
    [crash] = parse(log, report_oom=True)
    assert (crash.kind, crash.title) == (Kind.OOM, "OOM in handle_mm_fault")


def test_two_crashes_on_an_untagged_console_are_two_reports() -> None:
    crashes = parse(WARNING_LOG + DEMO)
    assert [c.title for c in crashes] == [
        "WARNING in split_huge_page_to_list",
        "BUG: corrupted list in deferred_split_scan",
    ]
    assert crashes[1].start_line == len(WARNING_LOG.splitlines()) + 4


def test_stream_emits_a_crash_when_its_report_ends_not_before() -> None:
    stream = CrashStream()
    lines = DEMO.splitlines()
    emitted = [c for line in lines for c in stream.feed(line)]
    assert emitted == []  # the tail after "end trace" is still open
    assert [c.title for c in stream.flush()] == ["BUG: corrupted list in deferred_split_scan"]
    assert stream.flush() == []


def test_stream_memory_is_bounded_by_closing_endless_reports() -> None:
    stream = CrashStream()
    stream.feed("[ 1.0] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2")
    emitted = []
    for i in range(MAX_REPORT_LINES + 5):
        emitted += stream.feed(f"[ 2.0] noise {i} " + "x" * 5000)
    assert len(emitted) == 1 and stream.idle
    assert len(emitted[0].report) < MAX_REPORT_LINES * 1100


def test_reports_of_two_tasks_interleaved_are_kept_apart() -> None:
    log = (
        "[ 1.1][ T10] BUG: sleeping function called from invalid context at mm/slab.h:1\n"
        "[ 1.2][ T20] WARNING: CPU: 1 PID: 20 at mm/huge_memory.c:3012 folio_split+0x5a/0x90\n"
        "[ 1.3][ T10] Call Trace:\n"
        "[ 1.4][ T20] RIP: 0010:folio_split+0x5a/0x90\n"
        "[ 1.5][ T10]  deferred_split_scan+0x2a1/0x3e0\n"
        "[ 1.6][ T20] Call Trace:\n"
        "[ 1.7][ T20]  shrink_folio_list+0x2a1/0x3e0\n"
    )
    crashes = parse(log)
    assert [(c.title, c.start_line) for c in crashes] == [
        ("BUG: sleeping function called from invalid context in deferred_split_scan", 1),
        ("WARNING in folio_split", 2),
    ]
    assert "shrink_folio_list" not in crashes[0].report


def test_unknown_info_lines_inside_a_report_do_not_start_crashes() -> None:
    slub = (
        "[ 7.1] BUG: KASAN: slab-out-of-bounds in folio_split+0x5a/0x90\n"
        "[ 7.2] Read of size 8 at addr ffff888012345678 by task kswapd0/97\n"
        "[ 7.3] INFO: Slab 0xffffea0004a8e0c0 objects=21 used=21 fp=0x0 flags=0x200\n"
        "[ 7.4] Call Trace:\n"
        "[ 7.5]  folio_split+0x5a/0x90\n"
        "[ 7.6]  deferred_split_scan+0x2a1/0x3e0\n"
    )
    assert [c.title for c in parse(slub)] == ["KASAN: slab-out-of-bounds Read in folio_split"]


def test_unique_keeps_the_first_of_each_title_with_its_count() -> None:
    crashes = parse(WARNING_LOG + DEMO + WARNING_LOG)
    assert [(c.start_line, n) for c, n in unique(crashes)] == [(2, 2), (14, 1)]


def test_a_real_qemu_boot_panic_ends_at_the_reboot_banner() -> None:
    # Serial console of a tinyconfig 6.1 kernel booted twice by QEMU with a broken
    # initramfs (no printk timestamps): one panic, then the reboot's banner.
    log = (FIXTURES / "qemu_6.1_no_init_panic.log").read_text()
    [crash] = parse(log)
    assert crash.title.startswith("kernel panic: No working init found. Try passing init=")
    assert (crash.kind, crash.start_line) == (Kind.PANIC, 159)
    assert crash.corrupted  # this kernel prints no stack on panic: nothing names a culprit
    assert "Linux version" not in crash.report
