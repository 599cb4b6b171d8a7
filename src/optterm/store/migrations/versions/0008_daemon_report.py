"""The lease row carries what its daemon reports about itself with each heartbeat (a JSON
object: its poll interval, when each table was last written, its write errors), so `optterm
status` judges health from the daemon's own figures. Rows written before stay NULL: no report.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column with no default: SQLite and PostgreSQL add it without rewriting rows.
    op.add_column("leases", sa.Column("report", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("report")
