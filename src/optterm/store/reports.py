"""What `optterm status` reads, as objects, without SQLAlchemy: the lease row, what the daemon
reports with each heartbeat (`DaemonReport`, kept as JSON in its lease row), the newest snapshot
written and the deliveries that failed.

The repositories (store/status.py, store/lease.py) and the plain reader (store/plainread.py)
build them from their rows alike. A daemon's report gives the interval it actually polls at,
when each table was last written and how many writes failed, so health is judged from the
daemon's own figures rather than from the config another process reads.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from optterm.model import Feed, ProviderHealth
from optterm.store.timecodec import from_us, from_us_or_none, to_us

__all__ = [
    "REPORTED_TABLES",
    "DaemonReport",
    "FailedDelivery",
    "LastSnapshot",
    "LeaseInfo",
    "TableWrites",
    "failed_delivery_from_row",
    "health_from_row",
    "last_snapshot_from_row",
    "lease_from_row",
    "lock_held",
    "lock_path",
]

# The tables whose writes a daemon reports, one entry each, in the order of a tick.
REPORTED_TABLES = ("snapshots", "metrics", "signals")
_MAX_ERROR_CHARS = 300
# The report is stored and shown: a database URL quoted by an error keeps its user, not its
# password.
_PASSWORD_IN_URL = re.compile(r"(://[^/\s:@]+:)[^@\s]+@")


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


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The `leases` row: who holds (or last held) the lease. Times are UTC."""

    name: str
    lease_no: int
    holder: str  # "host:pid"
    host: str
    pid: int
    since: datetime
    heartbeat_at: datetime
    released_at: datetime | None
    report: DaemonReport | None = None  # what the holder said with its last heartbeat


def lease_from_row(r: Any) -> LeaseInfo:
    """A `leases` row."""
    return LeaseInfo(
        name=r.name,
        lease_no=int(r.lease_no),
        holder=r.holder,
        host=r.host,
        pid=int(r.pid),
        since=from_us(r.since),
        heartbeat_at=from_us(r.heartbeat_at),
        released_at=from_us_or_none(r.released_at),
        report=DaemonReport.from_json(r.report),
    )


def lock_path(db: Path) -> Path:
    """The lock file of a SQLite database: `<database>.lease`, beside it."""
    return db.with_name(db.name + ".lease")


def lock_held(path: Path) -> bool | None:
    """Is the lease's lock file held (by any process, this one included)? None if it cannot be
    told."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)  # we got it: nobody holds it; let go at once
        return False
    finally:
        os.close(fd)


def last_snapshot_from_row(row: Any) -> LastSnapshot:
    """The head columns of a `snapshots` row."""
    return LastSnapshot(
        id=row.id,
        symbol=row.symbol,
        expiry=row.expiry,
        provider=row.provider,
        feed=Feed(row.feed),
        provider_ts=from_us(row.provider_ts),
        fetched_at=from_us(row.fetched_at),
    )


def failed_delivery_from_row(r: Any) -> FailedDelivery:
    """An `outbox` row that FAILED, with its event's title."""
    return FailedDelivery(
        id=r.id,
        event_id=r.event_id,
        title=r.title,
        channel_label=r.channel_label,
        attempts=r.attempts,
        error=r.last_error,
        failed_at=from_us(r.updated_at),
    )


def health_from_row(r: Any) -> ProviderHealth:
    """A `provider_health` row (its `day` a date)."""
    return ProviderHealth(
        provider=r.provider,
        day=r.day,
        requests=r.requests,
        successes=r.successes,
        failures=json.loads(r.failures),
        latency_ms_sum=r.latency_ms_sum,
        latency_ms_last=r.latency_ms_last,
        breaker=r.breaker,
        last_error=r.last_error,
        last_error_at=from_us_or_none(r.last_error_at),
    )
