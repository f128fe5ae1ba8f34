# SPDX-License-Identifier: Apache-2.0
"""patch trailers: trailers given in replies to a patch (Reviewed-by, Tested-by, ...)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 05:45:00

`farm submit` collects the trailers reviewers give in replies, as `b4 am` does, and
`farm series show` lists them. Patches stored before have none recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patches") as batch:
        batch.add_column(sa.Column("trailers", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("patches") as batch:
        batch.drop_column("trailers")
