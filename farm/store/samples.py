# SPDX-License-Identifier: Apache-2.0
"""Tables for what a soak observes: counter samples, console lines, host and run progress.

Samples are the bulk of the database (hundreds of fields every 10 s per host), so a row
holds one (host, timestamp) with every vmstat and meminfo value packed as little-endian
uint64 in a zlib blob; the field names live once in ``sample_keys`` and rows point at
them. That is ~5x smaller than JSON and decodes with one ``array`` call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time
import zlib
from array import array
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from farm.ending import SoakEvents
from farm.soak.sampler import U64, Reading
from farm.store.base import Base, Model, utcnow


class SampleKeys(Base):
    """The ordered field names of a packed sample (vmstat fields, then meminfo fields and
    the mm families of ``Reading.mm``, whose names carry a colon)."""

    __tablename__ = "sample_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    vmstat: Mapped[list[str]] = mapped_column()
    meminfo: Mapped[list[str]] = mapped_column()


class Sample(Base):
    """One reading of a host: all of /proc/vmstat and /proc/meminfo, taint, uptime, boot."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_host_ts", "host", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float, doc="unix time on the controller")
    phase: Mapped[str] = mapped_column(String(16), default="soak", doc="soak | quiesced")
    boot_id: Mapped[str] = mapped_column(String(64))
    uptime: Mapped[float]
    tainted: Mapped[int] = mapped_column(BigInteger)
    keys_id: Mapped[int] = mapped_column(ForeignKey("sample_keys.id"))
    values: Mapped[bytes] = mapped_column(LargeBinary, doc="zlib(uint64 LE array)")


class ConsoleLine(Base):
    """A line of a host's kernel console, kept with the run it belongs to."""

    __tablename__ = "console_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float)
    line: Mapped[str] = mapped_column(Text)


class HostState(Base):
    """What the scheduler knows about a host: its owner run, fence and health."""

    __tablename__ = "host_states"

    host: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), doc="run that owns the host now"
    )
    fence: Mapped[int] = mapped_column(
        BigInteger, default=0, doc="bumped on every lease; a write with an older one is stale"
    )
    up: Mapped[bool] = mapped_column(default=False)
    last_ok: Mapped[float | None] = mapped_column(Float, doc="last successful contact")
    last_sample_id: Mapped[int | None] = mapped_column(
        ForeignKey("samples.id", ondelete="SET NULL")
    )
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RunProgress(Base):
    """The soak state machine's private bookkeeping for one run."""

    __tablename__ = "run_progress"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tick: Mapped[int] = mapped_column(
        default=0, doc="step counter: a task carrying an older tick is a duplicate and drops"
    )
    due_at: Mapped[float] = mapped_column(Float, doc="when the next step should run")
    state_since: Mapped[float] = mapped_column(Float)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    infra_failures: Mapped[int] = mapped_column(default=0)
    kernel: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="built artefact paths")
    console_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    console_scan_from: Mapped[int] = mapped_column(
        default=0, doc="console_lines.id from which the crash parser rereads"
    )
    missed: Mapped[int] = mapped_column(default=0, doc="consecutive failed samples")
    last_ok: Mapped[float | None] = mapped_column(Float)
    load_pid: Mapped[int | None]
    events: Mapped[SoakEvents] = mapped_column(
        Model(SoakEvents), default=SoakEvents, doc="a hang, reboot or power cycle seen"
    )


class KeyCache:
    """Maps field-name layouts to ``sample_keys`` ids, creating rows on first sight."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._layouts: dict[int, tuple[list[str], list[str]]] = {}

    def key_id(self, session: Session, vmstat: list[str], meminfo: list[str]) -> int:
        digest = hashlib.sha256(json.dumps([vmstat, meminfo]).encode()).hexdigest()
        if digest in self._ids:
            return self._ids[digest]
        row = session.scalar(select(SampleKeys).where(SampleKeys.digest == digest))
        if row is None:
            row = SampleKeys(digest=digest, vmstat=vmstat, meminfo=meminfo)
            session.add(row)
            session.flush()
        self._ids[digest] = row.id
        self._layouts[row.id] = (row.vmstat, row.meminfo)
        return row.id

    def layout(self, session: Session, key_id: int) -> tuple[list[str], list[str]]:
        if key_id not in self._layouts:
            row = session.get(SampleKeys, key_id)
            assert row is not None, f"sample_keys {key_id} vanished"
            self._layouts[key_id] = (row.vmstat, row.meminfo)
        return self._layouts[key_id]


def pack(values: list[int]) -> bytes:
    packed = array("Q", [v & U64 for v in values])
    if sys.byteorder != "little":
        packed.byteswap()
    return zlib.compress(packed.tobytes(), 1)


def unpack(blob: bytes) -> array[int]:
    values = array("Q")
    values.frombytes(zlib.decompress(blob))
    if sys.byteorder != "little":
        values.byteswap()
    return values


def sample_row(
    keys: KeyCache,
    session: Session,
    *,
    host: str,
    run_id: int | None,
    reading: Reading,
) -> dict[str, Any]:
    """A row for ``insert(Sample)``: bulk inserts of these are the ingest path."""
    # The mm families (psi:, buddy:, slab:...) ride after meminfo: their names have a
    # colon, which no meminfo field has, so decode() tells them apart.
    vm_keys, mi_keys = list(reading.vmstat), [*reading.meminfo, *reading.mm]
    return {
        "run_id": run_id,
        "host": host,
        "ts": reading.ts,
        "phase": reading.phase,
        "boot_id": reading.boot_id,
        "uptime": reading.uptime,
        "tainted": reading.tainted,
        "keys_id": keys.key_id(session, vm_keys, mi_keys),
        "values": pack([*reading.vmstat.values(), *reading.meminfo.values(), *reading.mm.values()]),
    }


def decode(keys: KeyCache, session: Session, row: Sample) -> Reading:
    vm_keys, mi_keys = keys.layout(session, row.keys_id)
    values = unpack(row.values)
    split = len(vm_keys)
    rest = list(zip(mi_keys, values[split:], strict=True))
    return Reading(
        ts=row.ts,
        phase=row.phase,
        boot_id=row.boot_id,
        uptime=row.uptime,
        tainted=row.tainted,
        vmstat=dict(zip(vm_keys, values[:split], strict=True)),
        meminfo={key: value for key, value in rest if ":" not in key},
        mm={key: value for key, value in rest if ":" in key},
    )


def run_readings(session: Session, run_id: int, keys: KeyCache | None = None) -> list[Reading]:
    """Every sample of a run, oldest first."""
    keys = keys or KeyCache()
    rows = session.scalars(select(Sample).where(Sample.run_id == run_id).order_by(Sample.ts))
    return [decode(keys, session, row) for row in rows]


def series_of(readings: list[Reading], field: str) -> list[tuple[float, int]]:
    """(ts, value) of one field; ``meminfo:Name`` selects meminfo, anything else vmstat."""
    source, _, name = field.rpartition(":")
    out: list[tuple[float, int]] = []
    for reading in readings:
        table: Mapping[str, int] = reading.meminfo if source == "meminfo" else reading.vmstat
        if name in table:
            out.append((reading.ts, table[name]))
    return out


def add_samples(
    session: Session, keys: KeyCache, batch: list[tuple[str, int | None, Reading]]
) -> int:
    """Bulk ingest (host, run id, reading) triples and point each host at its newest
    sample; the number of values stored."""
    from sqlalchemy import insert, update

    rows = [sample_row(keys, session, host=h, run_id=r, reading=x) for h, r, x in batch]
    newest: dict[str, tuple[float, int]] = {}
    for sample_id, host, ts in session.execute(
        insert(Sample).returning(Sample.id, Sample.host, Sample.ts), rows
    ):
        if host not in newest or ts >= newest[host][0]:
            newest[host] = (ts, sample_id)
    existing = set(session.scalars(select(HostState.host).where(HostState.host.in_(newest))))
    session.add_all(HostState(host=h, fence=0) for h in newest if h not in existing)
    session.flush()
    session.execute(
        update(HostState),
        [
            {"host": host, "last_sample_id": sid, "last_ok": ts, "up": True}
            for host, (ts, sid) in newest.items()
        ],
    )
    return sum(len(x.vmstat) + len(x.meminfo) for _, _, x in batch)


def ensure_progress(session: Session, run_id: int) -> RunProgress:
    """The run's lifecycle bookkeeping, created due now if it has none yet."""
    progress = session.get(RunProgress, run_id)
    if progress is None:
        now = time.time()
        progress = RunProgress(run_id=run_id, tick=0, due_at=now, state_since=now)
        session.add(progress)
        session.flush()
    return progress
