# SPDX-License-Identifier: Apache-2.0
"""A sample carries what an mm developer looks at beside vmstat and meminfo: pressure
stall information, free blocks per order, the largest slab caches, khugepaged's work
and the memory.stat of the load's cgroup."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from sqlalchemy import insert, select

from farm.soak.sampler import TOP_SLABS, parse_mm, parse_sample, sample_command
from farm.store import Store
from farm.store.samples import KeyCache, Sample, decode, sample_row

FIXTURES = Path(__file__).with_name("fixtures")


def test_captured_pressure_buddyinfo_slabinfo_and_khugepaged_files_read_as_expected() -> None:
    texts = [(FIXTURES / f).read_text() for f in ("psi.txt", "buddyinfo.txt", "slabinfo.txt")]
    mm = parse_mm(*texts, (FIXTURES / "thp.txt").read_text(), "")
    assert mm == json.loads((FIXTURES / "mm-expected.json").read_text())


def test_the_memory_stat_of_the_loads_cgroup_is_read_by_field() -> None:
    mm = parse_mm("", "", "", "", "anon 4096\nfile 8192\nthp_fault_alloc 3\npgscan 120\n")
    assert mm == {
        "memcg:anon": 4096, "memcg:file": 8192, "memcg:thp_fault_alloc": 3, "memcg:pgscan": 120,
    }  # fmt: skip


def test_a_sample_of_this_machine_has_pressure_free_blocks_and_slab_totals() -> None:
    out = subprocess.run(
        ["sh", "-c", sample_command(None)], capture_output=True, text=True, check=True
    ).stdout
    reading, pulse = parse_sample(out, time.time())
    assert pulse is None
    assert {"psi:memory_some_total_us", "psi:io_full_avg10"} <= reading.mm.keys()
    assert any(key.startswith("buddy:Normal_") for key in reading.mm)
    slabs = [key for key in reading.mm if key.startswith("slab:")]
    assert "slab:total" in slabs and len(slabs) == TOP_SLABS + 1
    assert reading.vmstat["nr_free_pages"] > 0  # the sections before are read as before


def test_the_mm_families_are_stored_with_the_sample_and_read_back(store: Store) -> None:
    out = subprocess.run(
        ["sh", "-c", sample_command(None)], capture_output=True, text=True, check=True
    ).stdout
    reading, _ = parse_sample(out, time.time())
    with store.session() as session:
        session.execute(
            insert(Sample),
            [sample_row(KeyCache(), session, host="h", run_id=None, reading=reading)],
        )
    with store.session() as session:
        row = session.scalars(select(Sample)).one()
        again = decode(KeyCache(), session, row)
    assert again == reading
