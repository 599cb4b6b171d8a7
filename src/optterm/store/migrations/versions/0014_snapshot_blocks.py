"""History in time blocks: consecutive snapshots of a chain coded together (store/blockcodec.py).

A snapshot keeps its row (every list, count, seek and id works as before); once its chain has a
block's worth of newer rows, its chain, meta and context move into a `snapshot_blocks` row and
its own `data` becomes empty, `block_id` saying where they went. The partial index finds a
chain's rows that are still on their own without reading the rest of its history. Rows written
before keep their blobs and read as they always did.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshot_blocks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("head", sa.LargeBinary(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_snapshot_blocks_symbol_expiry_last_ts",
        "snapshot_blocks",
        ["symbol", "expiry", "last_ts"],
    )
    # Nullable with no default: added without rewriting rows.
    op.add_column("snapshots", sa.Column("block_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_snapshots_unblocked",
        "snapshots",
        ["symbol", "expiry", "provider", "provider_ts"],
        sqlite_where=sa.text("block_id IS NULL"),
        postgresql_where=sa.text("block_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_snapshots_unblocked", table_name="snapshots")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("block_id")
    op.drop_index("ix_snapshot_blocks_symbol_expiry_last_ts", table_name="snapshot_blocks")
    op.drop_table("snapshot_blocks")
