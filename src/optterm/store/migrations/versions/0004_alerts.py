"""Alerts: rules, their evaluation state, fired events and the notification outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("strike", sa.Double(), nullable=True),
        sa.Column("side", sa.String(2), nullable=True),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("pattern", sa.String(32), nullable=True),
        sa.Column("hysteresis", sa.Double(), nullable=False),
        sa.Column("tolerance", sa.Double(), nullable=False),
        sa.Column("window_s", sa.Double(), nullable=False),
        sa.Column("cooldown_s", sa.Double(), nullable=False),
        sa.Column("recurring", sa.Integer(), nullable=False),
        sa.Column("active_from", sa.String(5), nullable=True),
        sa.Column("active_to", sa.String(5), nullable=True),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("channel_labels", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_rules_symbol", "alert_rules", ["symbol"])
    op.create_table(
        "alert_state",
        sa.Column("rule_id", sa.Integer(), primary_key=True),
        sa.Column("armed", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("feed", sa.String(16), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_events_rule_fired", "alert_events", ["rule_id", "fired_at"])
    op.create_index("ix_alert_events_fired", "alert_events", ["fired_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("channel_label", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_event", "outbox", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_event", table_name="outbox")
    op.drop_index("ix_outbox_status_next", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_alert_events_fired", table_name="alert_events")
    op.drop_index("ix_alert_events_rule_fired", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_state")
    op.drop_index("ix_alert_rules_symbol", table_name="alert_rules")
    op.drop_table("alert_rules")
