# SPDX-License-Identifier: Apache-2.0
"""build queue: a build is its own job; who built it, what was asked, the artefacts'
checksums; which workers build and where their artefacts are fetched from

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # builds.state is a VARCHAR without a CHECK: the new "requested" needs no change.
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("builder", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("files", sa.JSON(), nullable=True))
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("builds", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("artefact_address", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("artefact_address")
        batch_op.drop_column("builds")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("files")
        batch_op.drop_column("request")
        batch_op.drop_column("builder")
