"""The one place that picks dialect-specific SQL for the store's portable repositories.

Upserts need the backend's own INSERT (`on_conflict_do_update` exists on the SQLite and the
PostgreSQL insert, with the same signature); everything else in the store is plain Core.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optterm.store.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import CursorResult, Table

# The dialects' insert() is imported where it is used: a SQLite store never loads the PostgreSQL
# dialect (a sizeable part of a CLI command's start-up), and the other way round.

__all__ = ["insert_for", "inserted_id", "upsert_for"]


def insert_for(conn: Any) -> Any:
    """The `insert()` supporting `on_conflict_do_update` for `conn`'s backend (a Connection or
    AsyncConnection on SQLite or PostgreSQL)."""
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        return _insert_of(name)
    raise StoreError(
        f"The optterm store supports SQLite and PostgreSQL databases, not {name}. Use a "
        "sqlite+aiosqlite:// or postgresql+asyncpg:// URL."
    )


def upsert_for(
    conn: Any, table: Table, key: Sequence[str], columns: Sequence[str], keep: Sequence[str] = ()
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE of `columns` except `key` and `keep`, for `conn`'s
    backend; execute it with a list of row dicts. Built once per (backend, table, key, columns,
    keep): building `excluded` makes a new alias of the table each time, which is most of the
    statement's cost on the poller's path."""
    insert_for(conn)  # refuses other backends with the usual message
    skip = frozenset(key) | frozenset(keep)
    return _upsert(conn.dialect.name, table, tuple(key), tuple(c for c in columns if c not in skip))


def _insert_of(backend: str) -> Any:
    if backend == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


@functools.cache
def _upsert(backend: str, table: Table, key: tuple[str, ...], update: tuple[str, ...]) -> Any:
    stmt = _insert_of(backend)(table)
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_={c: stmt.excluded[c] for c in update}
    )


def inserted_id(result: CursorResult[*tuple[Any, ...]]) -> int:
    """The primary key of the one row an INSERT added (the driver's lastrowid on SQLite, a
    RETURNING clause SQLAlchemy adds on PostgreSQL)."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StoreError("The database did not report the id of the row just inserted.")
    return int(key[0])
