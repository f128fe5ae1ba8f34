# SPDX-License-Identifier: Apache-2.0
"""series identity: content_hash is unique

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00

Two `farm submit` of one series at the same moment could both store it. From this
revision the database refuses the second row and the submit reuses the first. Rows
stored twice before are merged here into the oldest: its twins' applications, runs
and bisections move to it, and the twins and their (identical) patches go.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERRERS = ("applications", "runs", "bisections")  # tables with a series_id


def _merge_twins(conn: sa.Connection) -> None:
    twins = conn.execute(
        sa.text(
            "SELECT content_hash, MIN(id) FROM series GROUP BY content_hash HAVING COUNT(*) > 1"
        )
    ).all()
    for content_hash, keep in twins:
        others = conn.execute(
            sa.text("SELECT id FROM series WHERE content_hash = :h AND id != :keep"),
            {"h": content_hash, "keep": keep},
        ).scalars()
        for twin in list(others):
            ids = {"keep": keep, "twin": twin}
            for table in REFERRERS:
                conn.execute(
                    sa.text(f"UPDATE {table} SET series_id = :keep WHERE series_id = :twin"), ids
                )
            conn.execute(sa.text("DELETE FROM patches WHERE series_id = :twin"), ids)
            conn.execute(sa.text("DELETE FROM series WHERE id = :twin"), ids)


def upgrade() -> None:
    _merge_twins(op.get_bind())
    op.drop_index("ix_series_content_hash", table_name="series")
    op.create_index("ix_series_content_hash", "series", ["content_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_series_content_hash", table_name="series")
    op.create_index("ix_series_content_hash", "series", ["content_hash"], unique=False)
