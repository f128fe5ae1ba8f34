# SPDX-License-Identifier: Apache-2.0
"""The report as Markdown (with PNG files beside it) or as one self-contained HTML page."""

from __future__ import annotations

import base64
import html

from farm.report import plots
from farm.report.model import ReportInput
from farm.report.text import (
    crash_block,
    kernel_facts,
    patch_list,
    run_table,
    verdict,
    what_regressed,
)


def images(ri: ReportInput) -> dict[str, bytes]:
    """Plot file name -> PNG; empty plots are left out."""
    out: dict[str, bytes] = {}
    if ri.counters:
        out["counter.png"] = plots.counter_plot(ri.regression, ri.counters)
    if ri.posterior_steps:
        out["posterior.png"] = plots.posterior_plot(ri.posterior_steps)
    return out


def evidence(ri: ReportInput) -> list[str]:
    """The crash as the console had it, the patches applied and the kernel's facts."""
    patches = ["Patches applied on the base:", *patch_list(ri.applied, ri.total), ""]
    return [*crash_block(ri), *(patches if ri.applied else []), *kernel_facts(ri.kernel, None)]


def markdown(ri: ReportInput, image_prefix: str | None) -> str:
    """Markdown; plots are linked as ``<image_prefix><name>`` when a prefix is given."""
    out = [f"# Bisection {ri.bisection_id}: {ri.series_title}", ""]
    out += ["## What regressed", "", *(f"    {x}" for x in what_regressed(ri)), ""]
    out += ["## Verdict", "", verdict(ri), ""]
    out += ["## Evidence", "", "```", *evidence(ri), "```", ""]
    out += ["## Test runs", "", "```", *run_table(ri), "```", ""]
    if image_prefix is not None:
        for name in images(ri):
            out += [f"![{name[:-4]}]({image_prefix}{name})", ""]
    if ri.reproduce:
        out += ["## Reproduce", "", "```sh", *ri.reproduce, "```", ""]
    return "\n".join(out)


def to_html(ri: ReportInput) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Bisection {ri.bisection_id}</title></head><body>",
        f"<h1>Bisection {ri.bisection_id}: {esc(ri.series_title)}</h1>",
        "<h2>What regressed</h2><pre>" + esc("\n".join(what_regressed(ri))) + "</pre>",
        f"<h2>Verdict</h2><p>{esc(verdict(ri))}</p>",
        "<h2>Evidence</h2><pre>" + esc("\n".join(evidence(ri))) + "</pre>",
        "<h2>Test runs</h2><pre>" + esc("\n".join(run_table(ri))) + "</pre>",
    ]
    for name, png in images(ri).items():
        data = base64.b64encode(png).decode()
        parts.append(f"<p><img alt='{esc(name[:-4])}' src='data:image/png;base64,{data}'></p>")
    if ri.reproduce:
        parts.append("<h2>Reproduce</h2><pre>" + esc("\n".join(ri.reproduce)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
