# SPDX-License-Identifier: Apache-2.0
"""typed run endings: runs.reasons becomes runs.ending, run_progress.findings events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 02:30:00

Rows written before this revision said how a run ended in sentences; they are read
here once, by their old fixed prefixes, into the typed form. Nothing else ever
parses them again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENDING_KEYS = ("baseline_run", "samples", "console_tail", "power_cycle", "counter_failures")
PREFIXES = (
    ("crash: ", "crash"),
    ("hang", "hang"),
    ("host rebooted", "reboot"),
    ("counter ", "counter"),
    ("taint", "taint"),
    ("infrastructure", "infra"),
    ("configuration", "config"),
    ("load ", "load"),
)


def _finding(reason: str, verdict: str | None, counters: list[dict[str, Any]]) -> dict[str, Any]:
    cause = next((c for p, c in PREFIXES if reason.startswith(p)), None)
    cause = cause or ("infra" if verdict == "INFRA" else "kernel")
    found: dict[str, Any] = {"cause": cause, "text": reason}
    if cause == "crash":
        found["title"] = reason.removeprefix("crash: ")
    if cause == "counter" and counters:
        failure = counters.pop(0)
        found.update(counter=failure.get("counter"), rule=failure.get("rule"))
        found["value"] = failure.get("value")
    return found


def _power_cycle(text: str) -> dict[str, Any]:
    return {"done": "failed" not in text, "text": text}


def _ending(verdict: str | None, reasons: list[str], details: dict[str, Any]) -> dict[str, Any]:
    counters = list(details.get("counter_failures") or [])
    ending: dict[str, Any] = {"findings": [_finding(r, verdict, counters) for r in reasons]}
    for key in ("baseline_run", "samples", "console_tail"):
        if key in details:
            ending[key] = details[key]
    if isinstance(details.get("power_cycle"), str):
        ending["power_cycle"] = _power_cycle(details["power_cycle"])
    return ending


def _events(findings: dict[str, Any]) -> dict[str, Any]:
    events: dict[str, Any] = {}
    for key in ("hang", "reboot"):
        if isinstance(findings.get(key), str):
            events[key] = {"cause": key, "text": findings[key]}
    if isinstance(findings.get("power_cycle"), str):
        events["power_cycle"] = _power_cycle(findings["power_cycle"])
    return events


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("ending", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("run_progress") as batch:
        batch.add_column(sa.Column("events", sa.JSON(), nullable=False, server_default="{}"))
    conn = op.get_bind()
    runs = conn.execute(sa.text("SELECT id, verdict, reasons, details FROM runs")).all()
    for run_id, verdict, reasons, details in runs:
        details = _loads(details) or {}
        ending = _ending(verdict, _loads(reasons) or [], details)
        kept = {k: v for k, v in details.items() if k not in ENDING_KEYS}
        conn.execute(
            sa.text("UPDATE runs SET ending = :e, details = :d WHERE id = :id"),
            {"e": json.dumps(ending), "d": json.dumps(kept), "id": run_id},
        )
    for run_id, findings in conn.execute(sa.text("SELECT run_id, findings FROM run_progress")):
        conn.execute(
            sa.text("UPDATE run_progress SET events = :e WHERE run_id = :id"),
            {"e": json.dumps(_events(_loads(findings) or {})), "id": run_id},
        )
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("reasons")
        batch.alter_column("ending", server_default=None)
    with op.batch_alter_table("run_progress") as batch:
        batch.drop_column("findings")
        batch.alter_column("events", server_default=None)


def downgrade() -> None:
    raise NotImplementedError("typed run endings cannot be turned back into sentences safely")
