# SPDX-License-Identifier: Apache-2.0
"""farm's tables. Importing this package registers every table on ``Base.metadata``.

Only this package defines tables; one module per pipeline stage.
"""

from farm.store import alerts, bisect, builds, hosts, runs, samples, series, workers
from farm.store.base import Base, Store, utcnow

__all__ = [
    "Base",
    "Store",
    "alerts",
    "bisect",
    "builds",
    "hosts",
    "runs",
    "samples",
    "series",
    "utcnow",
    "workers",
]
