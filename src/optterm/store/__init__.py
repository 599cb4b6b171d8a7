"""Local history of chain snapshots, analytics, alerts and the daemon's bookkeeping: SQLite by
default, PostgreSQL for several hosts.

    store = await open_store("sqlite+aiosqlite:////path/optterm.db")
    try:
        await store.snapshots.write(snap)
        chain = await store.snapshots.latest("NIFTY")
    finally:
        await store.close()

One repository per concern hangs off the Store: `snapshots`, `analytics`, `health`, `alerts`,
`outbox`, `jobs`, `daily` and `status`; the poller's lease is in `optterm.store.lease`.
Importing this package creates no engine, touches no file and imports none of its modules (so
no SQLAlchemy): each name below comes from its module on first use, so that the read-only
commands can import `optterm.store.plainread` alone (that module says why).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optterm.store.alerts import DeliveryView, EventView, UnknownRule
    from optterm.store.codec import COLUMNS, decode_chain, encode_chain
    from optterm.store.daily import DailySpot, DailyStrike
    from optterm.store.errors import (
        CodecError,
        CorruptDatabaseError,
        LeaseLost,
        SchemaTooNewError,
        StoreError,
        StoreIOError,
        StoreLocationError,
        StoreUnavailable,
    )
    from optterm.store.jobs import JobRun
    from optterm.store.outbox import OutboxItem
    from optterm.store.rows import RuleStateRow
    from optterm.store.snapshots import SERIES_FIELDS, HistoryRow, StrikeSeries
    from optterm.store.status import FailedDelivery, LastSnapshot
    from optterm.store.store import Store, open_store

__all__ = [
    "COLUMNS",
    "SERIES_FIELDS",
    "CodecError",
    "CorruptDatabaseError",
    "DailySpot",
    "DailyStrike",
    "DeliveryView",
    "EventView",
    "FailedDelivery",
    "HistoryRow",
    "JobRun",
    "LastSnapshot",
    "LeaseLost",
    "OutboxItem",
    "RuleStateRow",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "StoreIOError",
    "StoreLocationError",
    "StoreUnavailable",
    "StrikeSeries",
    "UnknownRule",
    "decode_chain",
    "encode_chain",
    "open_store",
]

_HOME: dict[str, str] = {
    "COLUMNS": "optterm.store.codec",
    "CodecError": "optterm.store.errors",
    "CorruptDatabaseError": "optterm.store.errors",
    "DailySpot": "optterm.store.daily",
    "DailyStrike": "optterm.store.daily",
    "DeliveryView": "optterm.store.alerts",
    "EventView": "optterm.store.alerts",
    "FailedDelivery": "optterm.store.status",
    "HistoryRow": "optterm.store.snapshots",
    "JobRun": "optterm.store.jobs",
    "LastSnapshot": "optterm.store.status",
    "LeaseLost": "optterm.store.errors",
    "OutboxItem": "optterm.store.outbox",
    "RuleStateRow": "optterm.store.rows",
    "SERIES_FIELDS": "optterm.store.snapshots",
    "SchemaTooNewError": "optterm.store.errors",
    "Store": "optterm.store.store",
    "StoreError": "optterm.store.errors",
    "StoreIOError": "optterm.store.errors",
    "StoreLocationError": "optterm.store.errors",
    "StoreUnavailable": "optterm.store.errors",
    "StrikeSeries": "optterm.store.snapshots",
    "UnknownRule": "optterm.store.alerts",
    "decode_chain": "optterm.store.codec",
    "encode_chain": "optterm.store.codec",
    "open_store": "optterm.store.store",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'optterm.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later uses are plain attribute reads
    return value
