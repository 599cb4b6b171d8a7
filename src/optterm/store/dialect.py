"""The one place that picks dialect-specific SQL for the store's portable repositories.

Upserts need the backend's own INSERT (`on_conflict_do_update` exists on the SQLite and the
PostgreSQL insert, with the same signature); everything else in the store is plain Core.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from optterm.store.errors import StoreError

__all__ = ["insert_for"]


def insert_for(conn: Any) -> Any:
    """The `insert()` supporting `on_conflict_do_update` for `conn`'s backend (a Connection or
    AsyncConnection on SQLite or PostgreSQL)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise StoreError(
        f"The optterm store supports SQLite and PostgreSQL databases, not {name}. Use a "
        "sqlite+aiosqlite:// or postgresql+asyncpg:// URL."
    )
