# SPDX-License-Identifier: Apache-2.0
"""Patches that touch a function on the crash's stack are searched first."""

from __future__ import annotations

from farm.bisect.engine import Engine, Evidence, Outcome, Settings
from farm.bisect.model import Prior
from farm.bisect.priors import functions_touched, weights_from_stack

SPLIT = """\
--- a/mm/huge_memory.c
+++ b/mm/huge_memory.c
@@ -3300,7 +3300,9 @@ static unsigned long deferred_split_scan(struct shrinker *shrink,
     spin_lock_irqsave(&ds_queue->split_queue_lock, flags);
-    list_del_init(&folio->_deferred_list);
+    if (folio_test_partially_mapped(folio))
+        list_del_init(&folio->_deferred_list);
"""
DOCS = """\
--- a/Documentation/mm/transhuge.rst
+++ b/Documentation/mm/transhuge.rst
@@ -10,3 +10,4 @@ Design principles
 text
+more text
"""


def test_functions_in_hunk_headers_and_changed_lines_count() -> None:
    touched = functions_touched(SPLIT)
    assert {"deferred_split_scan", "list_del_init", "folio_test_partially_mapped"} <= touched
    assert functions_touched(DOCS) == set()


def test_the_patch_touching_the_stack_gets_the_boost_and_the_first_look() -> None:
    frames = ["__list_del_entry_valid_or_report+0x5c/0xc0", "deferred_split_scan+0x1f2/0x3a0"]
    weights = weights_from_stack([DOCS, DOCS, SPLIT, DOCS], frames)
    assert weights == (1.0, 1.0, 3.0, 1.0)
    engine = Engine(4, Settings(prior=Prior(patch_weights=weights)))
    engine.record(Evidence(4, "ws", "b0", 11.6, Outcome.MATCHING))
    patches, _ = engine.patch_posterior()
    assert max(range(4), key=lambda i: patches[i]) == 2
