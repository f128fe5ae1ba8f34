# SPDX-License-Identifier: Apache-2.0
"""The parser against real-world consoles collected from public sources (see
tests/fixtures/consoles/README): laptop and server dmesgs, journals full of daemons'
WARNING: lines, and crashes on x86_64, i386, arm32, arm64, s390 and ppc64 in raw,
<N>-level, dmesg -x, syslog and journal formats. Each expected answer was written down
before farm ran on the file."""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path

import pytest

from farm.detect.crash import Crash, parse

CONSOLES = Path(__file__).resolve().parents[1] / "fixtures/consoles"
ENTRIES = {e["file"]: e for e in tomllib.loads((CONSOLES / "expected.toml").read_text())["console"]}
CRASHES = sorted(name for name, e in ENTRIES.items() if e["title"])
CLEAN = sorted(name for name, e in ENTRIES.items() if not e["title"])


@cache
def crashes(name: str) -> tuple[Crash, ...]:
    return tuple(parse((CONSOLES / name).read_bytes()))


def test_every_console_file_has_an_expected_answer_and_the_corpus_is_big_enough() -> None:
    on_disk = {p.name for p in CONSOLES.glob("*.log")}
    assert on_disk == set(ENTRIES)
    assert len(CLEAN) >= 30 and len(CRASHES) >= 8


@pytest.mark.parametrize("name", CRASHES)
def test_the_first_crash_of_a_real_console_gets_the_expected_title(name: str) -> None:
    found = crashes(name)
    assert found, f"{name}: the crash was missed"
    assert found[0].matches(ENTRIES[name]["title"]), found[0].title
    # A report the source cut short is corrupted; expected.toml says so where it is.
    assert found[0].corrupted == ENTRIES[name].get("corrupted", False), found[0].corrupted_reason


@pytest.mark.parametrize("name", CLEAN)
def test_a_clean_real_boot_log_or_journal_reports_no_crash(name: str) -> None:
    assert [c.title for c in crashes(name)] == []


def test_daemon_warnings_in_a_journal_are_not_crashes_but_the_kernel_lockup_is() -> None:
    found = crashes("journal_ubuntu_soft_lockup_gnome_warnings.log")
    text = (CONSOLES / "journal_ubuntu_soft_lockup_gnome_warnings.log").read_text()
    lines = text.splitlines()
    assert "gnome-session" in lines[1828] and "WARNING:" in lines[1828]
    assert all(" kernel: " in lines[c.start_line - 1] for c in found)
    assert found[0].start_line == 4971


def test_a_harness_or_python_info_line_in_a_journal_starts_no_report() -> None:
    lines = (CONSOLES / "clean_arch_journal_python_info.log").read_text().splitlines()
    assert "INFO:root:Flash has 5 partitions." in lines[1248]
    assert crashes("clean_arch_journal_python_info.log") == ()


def test_a_pre_3_12_arm32_warning_is_titled_by_the_function_its_header_names() -> None:
    crash = crashes("arm32_tf201_android_levels_warning_at.log")[0]
    assert crash.title == "WARNING in tegra_i2c_xfer"
    assert crash.kind == "WARNING" and not crash.corrupted


def test_a_decoded_dmesg_x_stack_names_the_guilty_caller_of_mutex_lock() -> None:
    crash = crashes("lkp_dmesg_x_sleeping_igc.log")[0]
    assert crash.title == "BUG: sleeping function called from invalid context in igc_ptp_reset"


def test_an_escape_sequence_at_the_start_of_a_line_does_not_drop_the_line() -> None:
    # The clearfog arm64 WARNING, as a serial console that colours its lines.
    text = (CONSOLES / "arm64_clearfog_mvpp2_warning.log").read_text()
    coloured = "".join(f"\x1b[0m{line}\n" for line in text.splitlines())
    assert parse(coloured)[0].title == "WARNING in mvpp2_bm_bufs_free"
    assert [c.title for c in parse(coloured)] == [c.title for c in parse(text)]


def test_a_lava_yaml_log_is_unwrapped_and_its_harness_lines_ignored() -> None:
    # The ppc64 WARNING as LAVA records a target's console, after a harness INFO: line.
    text = (CONSOLES / "ppc64_stable_power_pmu_disable.log").read_text()
    lines = ['- {"dt": "2024-01-01T00:00:00", "lvl": "info", "msg": "INFO: Generating a skipfile"}']
    lines += [
        f'- {{"dt": "2024-01-01T00:00:01", "lvl": "target", "msg": {json.dumps(line)}}}'
        for line in text.splitlines()
    ]
    assert [c.title for c in parse("\n".join(lines))] == ["WARNING in power_pmu_disable"]


def _lines(name: str, first: int, last: int) -> list[str]:
    return (CONSOLES / name).read_text().splitlines()[first - 1 : last]


def test_two_cpus_oopses_interleaved_without_caller_ids_are_flagged_corrupted_with_why() -> None:
    # Two real reports, as a console without CONFIG_PRINTK_CALLER shows them when two
    # CPUs oops at once: the x86 NULL dereference (CPU 0) and the arm64 WARNING (CPU 2),
    # their lines alternating.
    oops = _lines("ubuntu_fips_dmesg_urandom_read_1.log", 864, 908)
    warning = _lines("arm64_clearfog_mvpp2_warning.log", 570, 617)
    mixed = [line for pair in zip(oops, warning, strict=False) for line in pair]
    cut, merged = parse("\n".join(mixed))
    assert cut.title.startswith("BUG: unable to handle kernel NULL pointer dereference")
    assert cut.corrupted and "interleave without caller ids" in cut.corrupted_reason
    assert merged.corrupted and "interleaved without printk caller ids" in merged.corrupted_reason
    assert "CPU 0 PID 114" in merged.corrupted_reason and "CPU 2 PID 35" in merged.corrupted_reason
    # Each report alone is not corrupted.
    assert not parse("\n".join(oops))[0].corrupted
    assert not parse("\n".join(warning))[0].corrupted


def test_a_netconsole_extended_log_is_unwrapped() -> None:
    # The s390 oops as netconsole's extended format sends it: "level,seq,usec,flags;text".
    text = (CONSOLES / "s390_lkml_folio_remove_rmap.log").read_text()
    records = [
        f"4,{seq},{507227423 + seq},-;{line.split('] ', 1)[-1]}"
        for seq, line in enumerate(text.splitlines()[:-1])
    ]
    titles = [c.title for c in parse("\n".join(records))]
    assert titles == ["BUG: unable to handle kernel paging request in folio_remove_rmap_ptes"]


def test_a_short_monotonic_journal_keeps_kernel_lines_and_their_frames() -> None:
    # journalctl -k -o short-monotonic of the Debian laptop's skb WARNING.
    text = (CONSOLES / "journal_nohost_skb_release_head_state.log").read_text()
    lines = [
        f"[ 5094.{n:06d}] latitude kernel: {line.split(' kernel: ', 1)[-1]}"
        for n, line in enumerate(text.splitlines())
    ]
    [crash] = parse("\n".join(lines))
    assert crash.title == "WARNING in skb_release_head_state" and not crash.corrupted


def test_firmware_and_bootloader_warning_lines_without_kernel_context_are_not_crashes() -> None:
    # FreeBSD's and ARM trusted firmware's own "WARNING:"/"INFO:" lines on a serial
    # console: no printk timestamp, no cut here, no registers or stack after them.
    freebsd = (CONSOLES / "clean_freebsd_oci_a1_dmesg.log").read_text().splitlines()
    assert freebsd[11] == "WARNING: WITNESS option enabled, expect reduced performance."
    firmware = (CONSOLES / "clean_arm64_rg353v_uboot_serial.log").read_bytes().splitlines()
    assert b"INFO:    Preloader serial" in firmware[77]
    assert crashes("clean_freebsd_oci_a1_dmesg.log") == ()
    assert crashes("clean_arm64_rg353v_uboot_serial.log") == ()


def test_the_same_warning_line_with_kernel_context_is_a_crash() -> None:
    # The untimestamped arm64 oops on the same kind of console is found: its registers
    # and call trace show the kernel printed it.
    [crash] = crashes("arm64_raw_serial_untimestamped_faulty_write.log")
    assert crash.start_line == 151
