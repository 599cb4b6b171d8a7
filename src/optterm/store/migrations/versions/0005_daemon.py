"""The daemon: the poller's lease, scheduler job runs, and end-of-day summaries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("lease_no", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_jobs_name_started", "jobs", ["name", "started_at"])
    op.create_table(
        "daily_strikes",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("expiry", sa.Date(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("strike", sa.Double(), primary_key=True),
        *(
            sa.Column(f"{side}_{name}", sa.Double(), nullable=True)
            for side in ("ce", "pe")
            for name in ("oi", "oi_change", "volume", "close")
        ),
    )
    op.create_table(
        "daily_spot",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("snapshots", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("daily_spot")
    op.drop_table("daily_strikes")
    op.drop_index("ix_jobs_name_started", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("leases")
