"""What `optterm status` reads from the store besides the lease: the newest snapshot written
and the deliveries that failed (`store.status`). Each is one index seek or a short scan.

What they return, and the shape of what a polling daemon reports about itself with each lease
heartbeat (`DaemonReport`), are in store/reports.py, shared with the plain reader.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from optterm.model import Delivery
from optterm.store.reports import (
    REPORTED_TABLES,
    DaemonReport,
    FailedDelivery,
    LastSnapshot,
    TableWrites,
    failed_delivery_from_row,
    last_snapshot_from_row,
)
from optterm.store.schema import alert_events, outbox, snapshots
from optterm.store.snapshots import HEAD_COLUMNS
from optterm.store.timecodec import to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = [
    "REPORTED_TABLES",
    "DaemonReport",
    "FailedDelivery",
    "LastSnapshot",
    "StatusRepository",
    "TableWrites",
]

_o, _e = outbox.c, alert_events.c
# Ids only grow, so the newest row is the last one written: one index seek, no scan.
_LAST_SNAPSHOT = select(*HEAD_COLUMNS).order_by(snapshots.c.id.desc()).limit(1)
_FAILED = (
    select(
        _o.id, _o.event_id, _o.channel_label, _o.attempts, _o.last_error, _o.updated_at, _e.title
    )
    .select_from(outbox.outerjoin(alert_events, _e.id == _o.event_id))
    .where(_o.status == Delivery.FAILED.value)
    .order_by(_o.updated_at.desc(), _o.id.desc())
)


class StatusRepository:
    """`store.status`: the store's side of the daemon's health check."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def last_snapshot(self) -> LastSnapshot | None:
        async with self._store.read_connection("Reading the newest snapshot") as conn:
            row = (await conn.execute(_LAST_SNAPSHOT)).one_or_none()
        if row is None:
            return None
        return last_snapshot_from_row(row)

    async def failed_deliveries(self, limit: int) -> list[FailedDelivery]:
        """The `limit` most recent FAILED deliveries, newest first."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        async with self._store.read_connection("Reading failed deliveries") as conn:
            rows = (await conn.execute(_FAILED.limit(limit))).all()
        return [failed_delivery_from_row(r) for r in rows]

    async def failed_since(self, since: datetime) -> int:
        """How many deliveries have FAILED at or after `since`."""
        stmt = (
            select(func.count())
            .select_from(outbox)
            .where(_o.status == Delivery.FAILED.value, _o.updated_at >= to_us(since, "since"))
        )
        async with self._store.read_connection("Counting failed deliveries") as conn:
            return int(await conn.scalar(stmt) or 0)
