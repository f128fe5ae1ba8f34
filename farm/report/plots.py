# SPDX-License-Identifier: Apache-2.0
"""PNG plots for the markdown/html report (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the backend must be chosen before this import
from matplotlib.ticker import MaxNLocator

from farm.report.model import CounterSeries


def _png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def counter_plot(name: str, series: list[CounterSeries]) -> bytes:
    """The regressed counter over time, one line per tested kernel and host."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for s in series:
        xs, ys = zip(*s.points, strict=True) if s.points else ((), ())
        label = ("base" if s.kernel == 0 else f"+{s.kernel:02d}") + f" on {s.host}"
        ax.plot(xs, ys, label=label)
    ax.set_xlabel("hours since the run began")
    ax.set_ylabel(name)
    ax.legend(fontsize="small")
    return _png(fig)


def posterior_plot(steps: list[list[float]]) -> bytes:
    """P(first bad patch) after each step: a heat map, patches across, steps down."""
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(steps) + 1.5))
    n = len(steps[0]) - 1 if steps else 0
    extent = (0.5, n + 1.5, len(steps) + 0.5, 0.5)  # patches and steps counted from 1
    image = ax.imshow(steps, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, extent=extent)
    ax.set_xticks(range(1, n + 2), [*(str(i) for i in range(1, n + 1)), "none"], fontsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("first bad patch")
    ax.set_ylabel("step")
    fig.colorbar(image, ax=ax, label="posterior")
    return _png(fig)
