# SPDX-License-Identifier: Apache-2.0
"""Prior weights per patch from what the crash's stack touches.

A patch whose diff changes a function named in the top of the decoded stack is a
likelier culprit: it gets `boost` times the weight of the others. This only reorders
the search; the evidence still decides.
"""

from __future__ import annotations

import re

_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "typeof", "defined"}


def functions_touched(diff: str) -> set[str]:
    """Function names in hunk headers and on changed lines of a unified diff."""
    names: set[str] = set()
    for line in diff.splitlines():
        if line.startswith("@@"):
            names.update(_CALL.findall(line.rpartition("@@")[2]))
        elif line[:1] in "+-" and not line.startswith(("+++", "---")):
            names.update(_CALL.findall(line[1:]))
    return names - _KEYWORDS


def weights_from_stack(
    diffs: list[str], frames: list[str], boost: float = 3.0
) -> tuple[float, ...]:
    """One weight per patch (in order) for Prior.patch_weights."""
    hot = {f.split("+")[0].split(".")[0].strip("? ") for f in frames[:8]} - {""}
    return tuple(boost if functions_touched(d) & hot else 1.0 for d in diffs)
