"""What `optterm status` reads from the store besides the lease: the newest snapshot written
and the deliveries that failed (`store.status`). Each is one index seek or a short scan.

Also the shape of what a polling daemon reports about itself with each lease heartbeat
(`DaemonReport`, kept as JSON in its lease row): the interval it actually polls at, when each
table was last written and how many writes failed, so health is judged from the daemon's own
figures rather than from the config another process reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from optterm.model import Delivery, Feed
from optterm.store.schema import alert_events, outbox, snapshots
from optterm.store.snapshots import HEAD_COLUMNS
from optterm.store.timecodec import from_us, to_us

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

# The tables whose writes a daemon reports, one entry each, in the order of a tick.
REPORTED_TABLES = ("snapshots", "metrics", "signals")
_MAX_ERROR_CHARS = 300
# The report is stored and shown: a database URL quoted by an error keeps its user, not its
# password.
_PASSWORD_IN_URL = re.compile(r"(://[^/\s:@]+:)[^@\s]+@")

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


@dataclass(slots=True)
class TableWrites:
    """One table's writes as the daemon saw them. `ok_at`: the last tick whose write to it
    succeeded (or had nothing new to write); `failed_at`: the last that failed. UTC."""

    ok_at: datetime | None = None
    failed_at: datetime | None = None
    errors: int = 0  # failed writes since the daemon started
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        """The latest attempt failed."""
        return self.failed_at is not None and (self.ok_at is None or self.failed_at >= self.ok_at)


def _us(ts: datetime | None) -> int | None:
    return None if ts is None else to_us(ts, "report time")


def _ts(value: object) -> datetime | None:
    return from_us(int(value)) if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class DaemonReport:
    """What a polling daemon says about itself with each heartbeat."""

    interval_s: float  # the pause between its ticks now (the scheduler may change it)
    heartbeat_s: float  # how often it beats
    ticks: int = 0
    last_tick_at: datetime | None = None
    tables: dict[str, TableWrites] = field(default_factory=dict)

    def record(self, table: str, at: datetime, error: BaseException | None = None) -> None:
        w = self.tables.setdefault(table, TableWrites())
        if error is None:
            w.ok_at = at
            return
        w.failed_at = at
        w.errors += 1
        text = _PASSWORD_IN_URL.sub(r"\1***@", str(error) or type(error).__name__)
        w.last_error = text[:_MAX_ERROR_CHARS]

    def to_json(self) -> str:
        return json.dumps(
            {
                "interval_s": self.interval_s,
                "heartbeat_s": self.heartbeat_s,
                "ticks": self.ticks,
                "last_tick_at": _us(self.last_tick_at),
                "tables": {
                    name: {
                        "ok_at": _us(w.ok_at),
                        "failed_at": _us(w.failed_at),
                        "errors": w.errors,
                        "last_error": w.last_error,
                    }
                    for name, w in self.tables.items()
                },
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> DaemonReport | None:
        """The report, or None when there is none or it cannot be read (an older or newer
        daemon's): status then falls back to what the config says."""
        if not text:
            return None
        try:
            doc = json.loads(text)
            tables = {
                str(name): TableWrites(
                    ok_at=_ts(w.get("ok_at")),
                    failed_at=_ts(w.get("failed_at")),
                    errors=int(w.get("errors") or 0),
                    last_error=w.get("last_error"),
                )
                for name, w in dict(doc.get("tables") or {}).items()
            }
            interval, beat = float(doc["interval_s"]), float(doc["heartbeat_s"])
            if not (interval > 0 and beat > 0):
                return None
            ticks = int(doc.get("ticks") or 0)
            return cls(interval, beat, ticks, _ts(doc.get("last_tick_at")), tables)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return None


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
