"""Alert rule ids are never reused (SQLite): `alert_rules` becomes an AUTOINCREMENT table.

Without AUTOINCREMENT, SQLite hands a new row max(id) + 1, so deleting the newest rule and adding
another gave the new rule the old one's id, and the old rule's firings (`alert_events.rule_id`
has no foreign key: history outlives its rule) showed up as the new rule's. The table is rebuilt
with every row as it was, and the id counter starts above every id a rule ever had: the largest
of the rules' ids and of the ids named by firings and evaluation state, so a rule deleted before
this upgrade cannot hand its id on either.

PostgreSQL needs nothing: its SERIAL sequence never goes back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The highest rule id anything in the database has ever named.
_HIGHEST_RULE_ID = sa.text(
    "SELECT max(high) FROM ("
    " SELECT max(id) AS high FROM alert_rules"
    " UNION ALL SELECT max(rule_id) FROM alert_events"
    " UNION ALL SELECT max(rule_id) FROM alert_state)"
)


def _sqlite() -> bool:
    # get_context().dialect works offline (`alembic upgrade --sql`) too, unlike get_bind().
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    if not _sqlite():
        return
    # Batch mode copies the table into a new one (rows, ids and the symbol index included).
    with op.batch_alter_table(
        "alert_rules", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    high = op.get_bind().execute(_HIGHEST_RULE_ID).scalar()
    op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'alert_rules'"))
    if high is not None:
        seed = sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('alert_rules', :high)")
        op.execute(seed.bindparams(high=int(high)))


def downgrade() -> None:
    if not _sqlite():
        return
    with op.batch_alter_table(
        "alert_rules", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
    op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'alert_rules'"))
