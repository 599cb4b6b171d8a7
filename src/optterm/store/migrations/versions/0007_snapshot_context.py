"""Snapshots carry what a trader reads around the chain: the underlying's previous close, and the
futures, India VIX and listed expiries as a JSON object. Rows written before stay NULL, which
reads back as "not given" (NaN, None, no expiries).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns with no default: SQLite and PostgreSQL add them without rewriting rows.
    op.add_column("snapshots", sa.Column("prev_close", sa.Double(), nullable=True))
    op.add_column("snapshots", sa.Column("context", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("context")
        batch.drop_column("prev_close")
