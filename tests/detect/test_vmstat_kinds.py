# SPDX-License-Identifier: Apache-2.0
"""vmstat items are typed from the kernel's own mm/vmstat.c: events are counters, nr_*
items are gauges except the cumulative ones, workingset_nodes is a gauge."""

from __future__ import annotations

import json
from pathlib import Path

from farm.detect.vmstat_kinds import guess_kind, vmstat_kinds

HERE = Path(__file__).parent
KINDS = vmstat_kinds((HERE / "vmstat_text-6.1.c").read_text())


def test_every_item_of_linux_6_1_has_the_expected_kind() -> None:
    assert json.loads((HERE / "vmstat-kinds-6.1.json").read_text()) == KINDS


def test_cumulative_node_items_are_counters_though_they_live_among_the_gauges() -> None:
    for item in ("nr_dirtied", "nr_written", "workingset_refault_anon", "nr_foll_pin_acquired"):
        assert KINDS[item] == "counter", item
    for item in ("workingset_nodes", "nr_anon_transparent_hugepages", "nr_dirty_threshold"):
        assert KINDS[item] == "gauge", item


def test_events_named_nr_are_counters_and_per_zone_events_are_expanded() -> None:
    assert KINDS["nr_tlb_remote_flush"] == "counter"
    assert KINDS["numa_hit"] == "counter"
    assert {KINDS[f"pgalloc_{zone}"] for zone in ("dma", "dma32", "normal", "movable")} == {
        "counter"
    }


def test_a_file_without_the_array_gives_nothing_and_unknown_items_are_guessed() -> None:
    assert vmstat_kinds("int main(void) { return 0; }") == {}
    assert (guess_kind("nr_new_gauge"), guess_kind("nr_dirtied"), guess_kind("pgnew")) == (
        "gauge", "counter", "counter",
    )  # fmt: skip
