"""What `optterm status` reads from the store besides the lease: the newest snapshot written
and the deliveries that failed (`store.status`). Each is one index seek or a short scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from optterm.model import Delivery, Feed
from optterm.store.schema import alert_events, outbox, snapshots
from optterm.store.snapshots import HEAD_COLUMNS
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["FailedDelivery", "LastSnapshot", "StatusRepository"]

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


@dataclass(frozen=True, slots=True)
class LastSnapshot:
    """The snapshot written last (whatever its chain), without its data. Times are UTC."""

    id: int
    symbol: str
    expiry: date
    provider: str
    feed: Feed
    provider_ts: datetime
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """An outbox row that ended FAILED. `title` is None when its event was deleted."""

    id: int
    event_id: int
    title: str | None
    channel_label: str
    attempts: int
    error: str | None
    failed_at: datetime  # UTC: when the row last changed, i.e. when it failed


class StatusRepository:
    """`store.status`: the store's side of the daemon's health check."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def last_snapshot(self) -> LastSnapshot | None:
        async with self._store.read_connection("Reading the newest snapshot") as conn:
            row = (await conn.execute(_LAST_SNAPSHOT)).one_or_none()
        if row is None:
            return None
        return LastSnapshot(
            id=row.id,
            symbol=row.symbol,
            expiry=row.expiry,
            provider=row.provider,
            feed=Feed(row.feed),
            provider_ts=from_us(row.provider_ts),
            fetched_at=from_us(row.fetched_at),
        )

    async def failed_deliveries(self, limit: int) -> list[FailedDelivery]:
        """The `limit` most recent FAILED deliveries, newest first."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        async with self._store.read_connection("Reading failed deliveries") as conn:
            rows = (await conn.execute(_FAILED.limit(limit))).all()
        return [
            FailedDelivery(
                id=r.id,
                event_id=r.event_id,
                title=r.title,
                channel_label=r.channel_label,
                attempts=r.attempts,
                error=r.last_error,
                failed_at=from_us(r.updated_at),
            )
            for r in rows
        ]

    async def failed_since(self, since: datetime) -> int:
        """How many deliveries have FAILED at or after `since`."""
        stmt = (
            select(func.count())
            .select_from(outbox)
            .where(_o.status == Delivery.FAILED.value, _o.updated_at >= to_us(since, "since"))
        )
        async with self._store.read_connection("Counting failed deliveries") as conn:
            return int(await conn.scalar(stmt) or 0)
