"""Local history of chain snapshots: SQLite by default, any SQLAlchemy async URL later.

    store = await open_store("sqlite+aiosqlite:////path/optterm.db")
    try:
        await store.write_snapshot(snap)
        chain = await store.latest_chain("NIFTY")
    finally:
        await store.close()

Importing this package creates no engine and touches no file.
"""

from optterm.store.codec import COLUMNS, decode_chain, encode_chain
from optterm.store.errors import (
    CodecError,
    CorruptDatabaseError,
    SchemaTooNewError,
    StoreError,
    StoreLocationError,
)
from optterm.store.repository import SERIES_FIELDS, HistoryRow, Store, StrikeSeries, open_store

__all__ = [
    "COLUMNS",
    "SERIES_FIELDS",
    "CodecError",
    "CorruptDatabaseError",
    "HistoryRow",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "StoreLocationError",
    "StrikeSeries",
    "decode_chain",
    "encode_chain",
    "open_store",
]
