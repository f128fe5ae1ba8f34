# SPDX-License-Identifier: Apache-2.0
"""Which /proc/vmstat items are counters (events since boot) and which are gauges,
read from the kernel's own ``vmstat_text[]`` in mm/vmstat.c.

The array is split by comments into the kernel's enums: ``zone_stat_item``,
``node_stat_item`` and ``writeback_stat_item`` items are current values (gauges);
``numa_stat_item`` and ``vm_event_item`` items are events (counters). A few node
items are cumulative although they live among the gauges; the kernel marks them only
in prose (mmzone.h), so they are listed here. ``TEXTS_FOR_ZONES("pgalloc")`` expands
to one item per zone type. Every ``#ifdef`` alternative is kept: a name the running
kernel lacks simply never shows up.
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["counter", "gauge"]
GAUGE_ENUMS = {"zone_stat_item", "node_stat_item", "writeback_stat_item"}
COUNTER_ENUMS = {"numa_stat_item", "vm_event_item"}
# node_stat_item entries that only ever grow (mmzone.h: "since bootup", refaults...).
CUMULATIVE_NODE_ITEMS = re.compile(
    r"workingset_(refault|activate|restore)_\w+|workingset_nodereclaim|nr_dirtied|nr_written"
    r"|nr_throttled_written|nr_vmscan_write|nr_vmscan_immediate_reclaim|nr_foll_pin_\w+"
    r"|pgpromote_\w+|pgdemote_\w+"
)
ZONE_SUFFIXES = ("dma", "dma32", "normal", "high", "movable", "device")
_ARRAY = re.compile(r"vmstat_text\[\]\s*=\s*\{(.*?)\n\};", re.DOTALL)
_ENUM = re.compile(r"/\*\s*enum (\w+) counters\s*\*/")
_ITEM = re.compile(r'TEXTS_FOR_ZONES\("(\w+)"\)|"(\w+)"')


def vmstat_kinds(source: str) -> dict[str, Kind]:
    """Each vmstat item named in mm/vmstat.c, with its kind; {} when the array is absent."""
    found = _ARRAY.search(source)
    if found is None:
        return {}
    kinds: dict[str, Kind] = {}
    enum = ""
    for line in found.group(1).splitlines():
        if match := _ENUM.search(line):
            enum = match.group(1)
            continue
        for zones, name in _ITEM.findall(line):
            names = [f"{zones}_{z}" for z in ZONE_SUFFIXES] if zones else [name]
            for item in names:
                kinds[item] = _kind(enum, item)
    return kinds


def _kind(enum: str, item: str) -> Kind:
    if enum in COUNTER_ENUMS:
        return "counter"
    if enum == "node_stat_item" and CUMULATIVE_NODE_ITEMS.fullmatch(item):
        return "counter"
    return "gauge" if enum in GAUGE_ENUMS else "counter"  # later enums are all events


def guess_kind(item: str) -> Kind:
    """For an item no known vmstat.c names (a newer kernel than the tree read)."""
    return (
        "gauge"
        if item.startswith("nr_") and not CUMULATIVE_NODE_ITEMS.fullmatch(item)
        else "counter"
    )
