"""Backtests: one row per run, the spec as typed and its whole result as JSON.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("span_from", sa.Date(), nullable=False),
        sa.Column("span_to", sa.Date(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("net_pnl", sa.Double(), nullable=False),
        sa.Column("interrupted", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_index("ix_backtests_created_at", "backtests", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_backtests_created_at", "backtests")
    op.drop_table("backtests")
