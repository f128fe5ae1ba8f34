#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate the demo's 28-patch RFC series as an mbox (farm.demoseries, run as a script).

    make_series.py --tree ~/.cache/farm/linux-source-6.1 --out series.mbox [--json]

The generator is part of farm, so ``python -m farm.demoseries`` does the same; its
recipes are examples/series/*.toml. docs/demo-series.md says what each patch does.
"""

from __future__ import annotations

import sys

from farm.demoseries import main

if __name__ == "__main__":
    sys.exit(main())
