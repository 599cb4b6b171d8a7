"""Snapshots, the registry of stored chains, and store_info.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    info = op.create_table(
        "store_info",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_store_info"),
    )
    op.bulk_insert(info, [{"key": "application", "value": "optterm"}])

    op.create_table(
        "snapshots",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("feed", sa.String(16), nullable=False),
        sa.Column("provider_ts", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.Column("spot", sa.Double(), nullable=True),
        sa.Column("lot_size", sa.Integer(), nullable=False),
        sa.Column("n_strikes", sa.Integer(), nullable=False),
        sa.Column("ce_oi_total", sa.Double(), nullable=True),
        sa.Column("pe_oi_total", sa.Double(), nullable=True),
        sa.Column("ce_volume_total", sa.Double(), nullable=True),
        sa.Column("pe_volume_total", sa.Double(), nullable=True),
        sa.Column("meta", sa.Text(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ux_snapshots_symbol_expiry_ts",
        "snapshots",
        ["symbol", "expiry", "provider_ts", "provider"],
        unique=True,
    )

    op.create_table(
        "chains",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "expiry", "provider", name="pk_chains"),
    )


def downgrade() -> None:
    op.drop_table("chains")
    op.drop_index("ux_snapshots_symbol_expiry_ts", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_table("store_info")
