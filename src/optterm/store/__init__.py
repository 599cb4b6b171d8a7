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
Importing this package creates no engine and touches no file.
"""

from optterm.store.alerts import DeliveryView, EventView, RuleStateRow, UnknownRule
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
