"""Scan alerts: a saved scan's notification channels and its per-symbol cooldown.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing scans notify nobody until given channels (`optterm scans add … --notify`).
    op.add_column("scans", sa.Column("channels", sa.Text(), nullable=False, server_default="[]"))
    op.add_column(
        "scans", sa.Column("channel_labels", sa.Text(), nullable=False, server_default="[]")
    )
    op.add_column(
        "scans", sa.Column("cooldown_s", sa.Double(), nullable=False, server_default="1800")
    )


def downgrade() -> None:
    with op.batch_alter_table("scans") as batch:
        batch.drop_column("cooldown_s")
        batch.drop_column("channel_labels")
        batch.drop_column("channels")
