# SPDX-License-Identifier: Apache-2.0
"""``farm exporter``: /metrics read from the store at scrape time.

A custom Collector (no metric objects updated by the pipeline): every scrape reads the
newest sample of each host, run and crash counts, builds and bisections, so the
numbers are always the database's. Labels are bounded: ``host`` (never ``instance``),
runs only while active or ended within 24 h. Names follow docs/metrics (the contract
in farm/metrics): vmstat counters ``farm_vmstat_<field>_total`` and gauges
``farm_vmstat_<field>``, typed by the kernel's own mm/vmstat.c of the first configured
tree (farm.detect.vmstat_kinds; by name for an item it does not know), meminfo
``farm_meminfo_<field>_bytes`` (the four HugePages_* counts, which are not sizes, as
``farm_meminfo_<field>``), and the mm families of a sample: ``farm_psi_*``,
``farm_buddyinfo_free_blocks{zone,order}``, ``farm_slab_bytes{cache}``,
``farm_memcg_*`` (the load's cgroup) and ``farm_thp_khugepaged_*``. Each host's kernel
is ``farm_kernel_info{release,commit,patch,config_hash}`` and its boot
``farm_host_boot_time_seconds``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from farm.config import FarmConfig
from farm.detect.vmstat_kinds import Kind, guess_kind, vmstat_kinds
from farm.errors import FarmError
from farm.git import git
from farm.metrics import overlay
from farm.store import Store
from farm.store.base import utcnow
from farm.store.bisect import Bisection, BisectState
from farm.store.builds import Build, BuildState
from farm.store.hosts import Health
from farm.store.hosts import states as host_healths
from farm.store.runs import TERMINAL, Crash, Run, RunState
from farm.store.samples import HostState, KeyCache, RunProgress, Sample, unpack

DEFAULT_PORT = 9478
RECENT = dt.timedelta(hours=24)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def meminfo_name(field: str) -> str:
    """MemFree -> farm_meminfo_memfree_bytes; HugePages_Total (a count) has no unit."""
    base = _NON_ALNUM.sub("_", field.lower()).strip("_")
    return (
        f"farm_meminfo_{base}" if field.startswith("HugePages_") else f"farm_meminfo_{base}_bytes"
    )


def tree_vmstat_kinds(config: FarmConfig) -> dict[str, Kind]:
    """The vmstat kinds of the first configured tree's mm/vmstat.c (HEAD); {} without."""
    if not config.trees:
        return {}
    try:
        return vmstat_kinds(git(config.trees[0].path, "show", "HEAD:mm/vmstat.c", timeout=30))
    except (FarmError, OSError):
        return {}


class FarmCollector(Collector):
    def __init__(self, config: FarmConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.keys = KeyCache()
        self.vmstat_kinds = tree_vmstat_kinds(config)

    def collect(self) -> Iterator[Metric]:
        with self.store.session() as session:
            yield from self._hosts(session)
            yield from self._runs(session)
            yield from self._bisections(session)
            yield from self._builds(session)

    # --- hosts and samples ----------------------------------------------------------

    def _hosts(self, session: Session) -> Iterator[Metric]:
        now = time.time()
        stale = 3 * self.config.scheduler.sample_interval
        states = {h.host: h for h in session.scalars(select(HostState))}
        samples = latest_samples(session, states.values())
        names = sorted({h.name for h in self.config.hosts} | set(states))
        up = GaugeMetricFamily(
            "farm_host_up", "1 when the host answered within 3 intervals", labels=["host"]
        )
        last = GaugeMetricFamily(
            "farm_host_last_sample_timestamp_seconds",
            "unix time of the newest sample",
            labels=["host"],
        )
        taint = GaugeMetricFamily("farm_host_tainted", "/proc/sys/kernel/tainted", labels=["host"])
        booted = GaugeMetricFamily(
            "farm_host_boot_time_seconds",
            "unix time the host's running kernel booted (sample time less uptime)",
            labels=["host"],
        )
        health = GaugeMetricFamily(
            "farm_host_health",
            "1 for the host's health state (GOOD, BAD...)",
            labels=["host", "state"],
        )
        healths = host_healths(session)
        for name in names:
            current = healths.get(name, Health.UNKNOWN)
            for level in Health:
                health.add_metric([name, str(level)], 1.0 if level == current else 0.0)
            state = states.get(name)
            ok = bool(state and state.up and state.last_ok and now - state.last_ok <= stale)
            up.add_metric([name], 1.0 if ok else 0.0)
            sample = samples.get(name)
            if sample is not None:
                last.add_metric([name], sample.ts)
                taint.add_metric([name], float(sample.tainted))
                booted.add_metric([name], sample.ts - sample.uptime)
        yield from (up, last, taint, health, booted)

    # --- runs and crashes -----------------------------------------------------------

    def _runs(self, session: Session) -> Iterator[Metric]:
        now = time.time()
        by_state = GaugeMetricFamily("farm_runs", "runs per state", labels=["state"])
        counts = dict(session.execute(select(Run.state, func.count()).group_by(Run.state)).all())
        for state in RunState:
            by_state.add_metric([str(state)], float(counts.get(state, 0)))
        yield by_state
        recent = session.scalars(
            select(Run).where(or_(Run.state.not_in(TERMINAL), Run.ended_at >= utcnow() - RECENT))
        ).all()
        info = GaugeMetricFamily(
            "farm_run_info",
            "active and recent runs",
            labels=["run", "series", "patch", "kernel", "host", "load", "kind"],
        )
        age = GaugeMetricFamily(
            "farm_run_state_age_seconds",
            "seconds an active run has been in its state",
            labels=["run", "host", "state"],
        )
        crashes = GaugeMetricFamily(
            "farm_run_crashes", "crashes seen on the run", labels=["run", "host"]
        )
        failures = GaugeMetricFamily(
            "farm_run_counter_failures",
            "1 when the run failed that counter expectation",
            labels=["run", "host", "counter"],
        )
        ids = [r.id for r in recent]
        crash_counts = dict(
            session.execute(
                select(Crash.run_id, func.count())
                .where(Crash.run_id.in_(ids))
                .group_by(Crash.run_id)
            ).all()
        )
        since = dict(
            session.execute(
                select(RunProgress.run_id, RunProgress.state_since).where(
                    RunProgress.run_id.in_(ids)
                )
            ).all()
        )
        for run in recent:
            rid = str(run.id)
            kernel = run.kernel_release or run.commit[:12]
            info.add_metric(
                [
                    rid,
                    str(run.series_id or ""),
                    str(run.upto),
                    kernel,
                    run.host,
                    run.load,
                    str(run.kind),
                ],
                1.0,
            )
            crashes.add_metric([rid, run.host], float(crash_counts.get(run.id, 0)))
            if run.state not in TERMINAL and run.id in since:
                age.add_metric([rid, run.host, str(run.state)], now - since[run.id])
            for counter in run.ending.failed_counters:
                failures.add_metric([rid, run.host, counter], 1.0)
        yield from (info, age, crashes, failures, self._kernels(session, recent))
        yield overlay.counters(self.config, session, self.keys, recent)
        yield overlay.events(self.config, session, recent)
        total = CounterMetricFamily(
            "farm_crashes", "all crashes ever seen", labels=["host", "kind"]
        )
        for host, kind, count in session.execute(
            select(Crash.host, Crash.kind, func.count()).group_by(Crash.host, Crash.kind)
        ):
            total.add_metric([host, kind], float(count))
        yield total

    def _kernels(self, session: Session, recent: Iterable[Run]) -> Metric:
        """The kernel each host runs now: that of its active run (or newest recent one)."""
        info = GaugeMetricFamily(
            "farm_kernel_info",
            "the kernel a host runs: release, commit, patches applied, config hash",
            labels=["host", "release", "commit", "patch", "config_hash"],
        )
        newest: dict[str, Run] = {}
        for run in sorted(recent, key=lambda r: (r.state not in TERMINAL, r.id)):
            if run.kernel_release:
                newest[run.host] = run
        commits = {run.commit for run in newest.values()}
        hashes = dict(
            session.execute(
                select(Build.commit, Build.config_hash).where(
                    Build.commit.in_(commits), Build.state == BuildState.OK
                )
            ).all()
        )
        for host, run in sorted(newest.items()):
            labels = [host, run.kernel_release or "", run.commit, str(run.upto)]
            info.add_metric([*labels, hashes.get(run.commit, "")], 1.0)
        return info

    def _bisections(self, session: Session) -> Iterator[Metric]:
        states = GaugeMetricFamily("farm_bisections", "bisections per state", labels=["state"])
        counts = dict(
            session.execute(select(Bisection.state, func.count()).group_by(Bisection.state)).all()
        )
        for state in BisectState:
            states.add_metric([str(state)], float(counts.get(state, 0)))
        confidence = GaugeMetricFamily(
            "farm_bisection_confidence",
            "max posterior of active/recent bisections",
            labels=["bisection"],
        )
        recent = session.scalars(
            select(Bisection).where(
                or_(
                    Bisection.state.in_([BisectState.REQUESTED, BisectState.RUNNING]),
                    Bisection.updated_at >= utcnow() - RECENT,
                )
            )
        ).all()
        for b in recent:
            confidence.add_metric([str(b.id)], max(b.posterior, default=0.0))
        yield from (states, confidence, overlay.leaders(session, recent))

    # --- builds ---------------------------------------------------------------------

    def _builds(self, session: Session) -> Iterable[Metric]:
        totals = {"ok": 0.0, "kernel_fault": 0.0, "infra": 0.0}
        rows = session.execute(
            select(Build.state, Build.fault, func.count()).group_by(Build.state, Build.fault)
        )
        for state, fault, count in rows:
            if state == BuildState.OK:
                totals["ok"] += count
            elif state == BuildState.FAILED:
                totals["kernel_fault" if fault == "kernel" else "infra"] += count
        duration = GaugeMetricFamily(
            "farm_build_duration_seconds",
            "duration of the newest build of that kind",
            labels=["kind"],
        )
        for incremental, kind in ((False, "clean"), (True, "incremental")):
            newest = session.scalar(
                select(Build.duration_seconds)
                .where(Build.state == BuildState.OK, Build.incremental == incremental)
                .order_by(Build.updated_at.desc())
                .limit(1)
            )
            if newest is not None:
                duration.add_metric([kind], float(newest))
        builds = CounterMetricFamily("farm_builds", "builds done", labels=["result"])
        for result, done in totals.items():
            builds.add_metric([result], done)
        return [duration, builds]


def latest_samples(session: Session, states: Iterable[HostState]) -> dict[str, Sample]:
    ids = [h.last_sample_id for h in states if h.last_sample_id is not None]
    return {s.host: s for s in session.scalars(select(Sample).where(Sample.id.in_(ids)))}


def _label(host: str) -> str:
    escaped = host.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{{host="{escaped}"}}'


def sample_exposition(
    session: Session, keys: KeyCache, kinds: dict[str, Kind] | None = None
) -> str:
    """vmstat, meminfo and the mm families of every host's newest sample in Prometheus
    text format.

    Written directly rather than through metric families: at 1000 hosts x ~250 fields
    prometheus_client's generic path took ~4 s per scrape, this one a fraction of that.
    Samples sharing a field layout are read by index from their packed arrays.
    """
    by_layout: dict[int, list[tuple[str, array[int]]]] = defaultdict(list)
    for sample in latest_samples(session, session.scalars(select(HostState))).values():
        by_layout[sample.keys_id].append((_label(sample.host), unpack(sample.values)))
    families: dict[str, tuple[str, str, list[str]]] = {}
    for key_id, hosts in by_layout.items():
        vm_keys, mi_keys = keys.layout(session, key_id)
        fields = [(f, *_vmstat_family(f, kinds or {}), "") for f in vm_keys]
        fields += [
            _mm_family(f, kinds or {}) if ":" in f else (f, meminfo_name(f), "gauge", "")
            for f in mi_keys
        ]
        for index, (field, name, kind, extra) in enumerate(fields):
            family = families.get(name)
            if family is None:
                family = families[name] = (field, kind, [])
            sample_name = f"{name}_total" if kind == "counter" else name
            family[2].extend(
                f"{sample_name}{_with(label, extra)} {values[index]}\n" for label, values in hosts
            )
    out: list[str] = []
    for name, (field, kind, lines) in families.items():
        exposed = f"{name}_total" if kind == "counter" else name  # as prometheus_client writes
        out.append(f"# HELP {exposed} {_source(name, field)}\n# TYPE {exposed} {kind}\n")
        out.extend(lines)
    return "".join(out)


def _with(label: str, extra: str) -> str:
    return f"{label[:-1]},{extra}}}" if extra else label


def _source(name: str, field: str) -> str:
    if name.startswith("farm_meminfo_"):
        return f"/proc/meminfo {field}"
    if name.startswith("farm_vmstat_"):
        return f"/proc/vmstat {field}"
    return MM_HELP[field.partition(":")[0]]


MM_HELP = {
    "psi": "/proc/pressure/*: stall microseconds (total) or hundredths of a percent (avg10)",
    "buddy": "/proc/buddyinfo: free blocks per zone and order",
    "slab": "/proc/slabinfo: bytes of the largest caches (num_objs x objsize)",
    "memcg": "memory.stat of the load's cgroup",
    "thp": "/sys/kernel/mm/transparent_hugepage/khugepaged",
}


def _mm_family(field: str, kinds: dict[str, Kind]) -> tuple[str, str, str, str]:
    """(field, metric name, kind, extra labels) of a ``family:name`` sample field."""
    family, _, name = field.partition(":")
    safe = _NON_ALNUM.sub("_", name.lower()).strip("_")
    if family == "psi":
        kind = "counter" if name.endswith("_total_us") else "gauge"
        return (
            field,
            f"farm_psi_{safe.removesuffix('_total_us')}"
            + ("_microseconds" if kind == "counter" else ""),
            kind,
            "",
        )
    if family == "buddy":
        zone, _, order = name.rpartition("_")
        return field, "farm_buddyinfo_free_blocks", "gauge", f'zone="{_esc(zone)}",order="{order}"'
    if family == "slab":
        if name == "total":
            return field, "farm_slab_total_bytes", "gauge", ""
        return field, "farm_slab_bytes", "gauge", f'cache="{_esc(name)}"'
    if family == "thp":
        return field, f"farm_thp_khugepaged_{safe}", "counter", ""
    # memory.stat: sizes in bytes, and the vm events of the group (pgfault, thp_*...).
    event = kinds.get(name) == "counter" or (
        (name not in kinds and name.startswith(("pg", "thp_"))) or name in _MEMCG_EVENTS
    )
    if event:
        return field, f"farm_memcg_{safe}", "counter", ""
    unit = "" if name == "workingset_nodes" else "_bytes"  # the one count among sizes
    return field, f"farm_memcg_{safe}{unit}", "gauge", ""


_MEMCG_EVENTS = frozenset(
    f"workingset_{what}_{kind}"
    for what in ("refault", "activate", "restore")
    for kind in ("anon", "file")
) | {"workingset_nodereclaim"}


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _vmstat_family(field: str, kinds: dict[str, Kind]) -> tuple[str, str]:
    kind = kinds.get(field) or guess_kind(field)
    return f"farm_vmstat_{_NON_ALNUM.sub('_', field.lower())}", kind


class Exposition:
    """The whole /metrics body: the Collector's families plus the host samples."""

    def __init__(self, config: FarmConfig, store: Store) -> None:
        from prometheus_client import CollectorRegistry

        self.store = store
        self.collector = FarmCollector(config, store)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        with self.store.session() as session:
            samples = sample_exposition(session, self.collector.keys, self.collector.vmstat_kinds)
        return generate_latest(self.registry) + samples.encode()


def serve(config: FarmConfig, store: Store, *, address: str, port: int) -> None:
    """Serve /metrics until interrupted."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    exposition = Exposition(config, store)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics here")
                return
            body = exposition.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((address, port), Handler)
    try:
        server.serve_forever()
    finally:
        server.server_close()
