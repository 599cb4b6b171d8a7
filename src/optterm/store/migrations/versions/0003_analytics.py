"""Analytics: per-snapshot chain metrics and detected pattern signals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("feed", sa.String(16), nullable=False),
        sa.Column("forward_source", sa.String(16), nullable=False),
        sa.Column("spot", sa.Double(), nullable=True),
        sa.Column("forward", sa.Double(), nullable=True),
        sa.Column("t_years", sa.Double(), nullable=True),
        sa.Column("ce_oi", sa.Double(), nullable=True),
        sa.Column("pe_oi", sa.Double(), nullable=True),
        sa.Column("ce_oi_change", sa.Double(), nullable=True),
        sa.Column("pe_oi_change", sa.Double(), nullable=True),
        sa.Column("ce_volume", sa.Double(), nullable=True),
        sa.Column("pe_volume", sa.Double(), nullable=True),
        sa.Column("pcr_oi", sa.Double(), nullable=True),
        sa.Column("pcr_volume", sa.Double(), nullable=True),
        sa.Column("pcr_oi_change", sa.Double(), nullable=True),
        sa.Column("max_pain", sa.Double(), nullable=True),
        sa.Column("support", sa.Double(), nullable=True),
        sa.Column("resistance", sa.Double(), nullable=True),
        sa.Column("support_change", sa.Double(), nullable=True),
        sa.Column("resistance_change", sa.Double(), nullable=True),
        sa.Column("atm_strike", sa.Double(), nullable=True),
        sa.Column("atm_iv", sa.Double(), nullable=True),
        sa.Column("straddle", sa.Double(), nullable=True),
        sa.Column("rr25", sa.Double(), nullable=True),
        sa.Column("gex", sa.Double(), nullable=True),
        sa.Column("gamma_flip", sa.Double(), nullable=True),
        sa.Column("call_wall", sa.Double(), nullable=True),
        sa.Column("put_wall", sa.Double(), nullable=True),
        sa.Column("iv_rank", sa.Double(), nullable=True),
        sa.Column("iv_percentile", sa.Double(), nullable=True),
        sa.Column("view_bias", sa.String(16), nullable=False),
        sa.Column("view_score", sa.Double(), nullable=True),
        sa.Column("view_reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "expiry", "ts", name="pk_metrics"),
    )
    op.create_index("ix_metrics_symbol_ts", "metrics", ["symbol", "ts"])

    op.create_table(
        "signals",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("strikes", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.Column("strength", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("feed", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_signals"),
    )
    op.create_index("ix_signals_symbol_last_seen", "signals", ["symbol", "last_seen"])
    op.create_index("ix_signals_expires_at", "signals", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_signals_expires_at", table_name="signals")
    op.drop_index("ix_signals_symbol_last_seen", table_name="signals")
    op.drop_table("signals")
    op.drop_index("ix_metrics_symbol_ts", table_name="metrics")
    op.drop_table("metrics")
