"""Alembic environment for optterm's store.

Users never need an alembic.ini: `optterm.store.migrate` builds the Config in code and hands the
open connection in through `config.attributes["connection"]`, so the migration runs inside the
caller's (BEGIN IMMEDIATE) transaction and either all of it lands or none of it.

For developers: `optterm.store.migrate.alembic_config(url)` gives a Config usable with
`alembic.command.revision(cfg, message, autogenerate=True)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import context
from sqlalchemy import create_engine, pool

from optterm.store.schema import metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        # SQLite DDL is transactional; say so, or Alembic assumes it is not.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()
