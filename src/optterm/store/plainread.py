"""The read-only commands' way into a SQLite store: the standard library's sqlite3 alone.

`optterm alerts list`, `patterns`, `history list` and `status` read a few rows. Through the
Store they would first import SQLAlchemy (with the ORM its asyncio extension pulls in), aiosqlite
and start an event loop: about 0.4 s, most of such a command's run. So for a SQLite file that is
already at the current schema (store/migrate.py tells, without Alembic) they read here instead,
over the same read-only connection the Store's read-only open makes (store/access.py). Anything
else — a server URL, a file to create or migrate, an in-memory or URI database, a path a URL
would escape — returns None from `open_plain`, and the command goes through `open_store`.

Each method is one repository method's read as plain SQL, returning what that method returns
(the rows become objects through store/rows.py and store/reports.py, shared with the
repositories); tests/test_plainread.py runs both on the same databases and compares the answers.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, Self

from optterm.store.access import read_only_query, sqlite_problem
from optterm.store.migrate import FileState, head_from_filenames, inspect_sqlite_file
from optterm.store.timecodec import DAY_US, IST_OFFSET_US, from_us, to_us

if TYPE_CHECKING:
    from collections.abc import Iterable

    from optterm.model import AlertRule, PatternKind, ProviderHealth, Signal
    from optterm.store.reports import FailedDelivery, LastSnapshot, LeaseInfo
    from optterm.store.rows import RuleStateRow

__all__ = ["DayRow", "PlainReader", "open_plain"]

# The Store's reader connections set the same (store/db.py).
_PRAGMAS = ("PRAGMA busy_timeout=5000", "PRAGMA query_only=ON")


@dataclass(frozen=True, slots=True)
class DayRow:
    """One row of `store.snapshots.history()` (a HistoryRow there): a chain's snapshots on one
    trading day (Asia/Kolkata) from one provider."""

    symbol: str
    expiry: date
    trading_date: date
    provider: str
    count: int
    first_ts: datetime  # UTC
    last_ts: datetime  # UTC


def open_plain(url: str) -> PlainReader | None:
    """A reader for the SQLite store at `url` when it is a file at the current schema, else
    None. A file that is damaged, not optterm's or from a newer optterm raises the StoreError
    open_store would."""
    path = _sqlite_file(url)
    if path is None:
        return None
    state, revision = inspect_sqlite_file(path)
    if state is not FileState.OPTTERM or revision != head_from_filenames():
        return None
    query = "&".join(f"{k}={v}" for k, v in read_only_query(path).items())
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, isolation_level=None)
        for pragma in _PRAGMAS:
            conn.execute(pragma)
    except sqlite3.Error as err:
        raise sqlite_problem(path, "Opening the optterm database", err) from None
    return PlainReader(path, conn)


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL or path, where resolve_url (store/db.py) finds it; None for
    what is left to open_store: servers, memory, URI file names, query strings, escapes."""
    text = str(url).strip()
    if "://" in text:
        prefix = next((p for p in ("sqlite:///", "sqlite+aiosqlite:///") if text.startswith(p)), "")
        if not prefix:
            return None
        text = text[len(prefix) :]
        if text in ("", ":memory:") or text.startswith("file:"):
            return None
    if not text:
        return None
    path = Path(text).expanduser().absolute()
    # Paths SQLAlchemy would write (or read) differently in a URL (escapes, ?, #, @, non-ASCII)
    # are left to open_store: rare, and this keeps `url` equal to the Store's own.
    return path if _PLAIN_PATH.fullmatch(str(path)) else None


_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./ +~-]+")


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> SimpleNamespace:
    # Attribute access, as on a SQLAlchemy Row; Date columns (all named expiry or day) as dates.
    row = SimpleNamespace(**{d[0]: v for d, v in zip(cursor.description, values, strict=True)})
    for name in _DATE_COLUMNS:
        if isinstance(value := getattr(row, name, None), str):
            setattr(row, name, date.fromisoformat(value))
    return row


_DATE_COLUMNS = ("expiry", "day")


class PlainReader:
    """Read-only queries on one SQLite store; close it (or use it in a `with`)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        conn.row_factory = _row

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _all(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        try:
            return self._conn.execute(sql, params or {}).fetchall()
        except sqlite3.Error as err:
            raise sqlite_problem(self.path, "Reading", err) from None

    # ------------------------------------------------------------------- store.alerts

    def list_rules(self, *, owner: str | None = None, symbol: str | None = None) -> list[AlertRule]:
        """`store.alerts.list_rules(owner=…, symbol=…)`."""
        # store/rows.py imported where used: it brings the model and numpy, which
        # `history list` does without.
        from optterm.store.rows import rule_from_row

        where, params = [], {"owner": owner, "symbol": symbol}
        if owner is not None:
            where.append("owner = :owner")
        if symbol is not None:
            where.append("symbol = :symbol")
        sql = "SELECT * FROM alert_rules" + _where(where) + " ORDER BY id"
        return [rule_from_row(r) for r in self._all(sql, params)]

    def load_activity(self) -> dict[int, RuleStateRow]:
        """`store.alerts.load_activity()`."""
        from optterm.store.rows import rule_activity, state_from_row

        fired = self._all(
            "SELECT rule_id AS rule_id, count(*) AS n, max(fired_at) AS last "
            "FROM alert_events GROUP BY rule_id"
        )
        states = {int(r.rule_id): state_from_row(r) for r in self._all("SELECT * FROM alert_state")}
        return rule_activity(states, ((r.rule_id, r.n, r.last) for r in fired))

    # ---------------------------------------------------------------- store.analytics

    def load_signals(
        self,
        symbol: str | None = None,
        kinds: Iterable[PatternKind | str] | None = None,
        since: datetime | None = None,
        active_at: datetime | None = None,
        limit: int | None = 200,
    ) -> list[Signal]:
        """`store.analytics.load_signals(…)`, the same arguments."""
        from optterm.model import PatternKind
        from optterm.store.rows import signal_from_row

        where: list[str] = []
        params: dict[str, Any] = {}
        if symbol is not None:
            where.append("symbol = :symbol")
            params["symbol"] = symbol
        if kinds is not None:
            names = sorted({str(PatternKind(k)) for k in kinds})
            params.update({f"kind{i}": k for i, k in enumerate(names)})
            where.append(f"kind IN ({', '.join(f':kind{i}' for i in range(len(names)))})")
        if since is not None:
            where.append("last_seen >= :since")
            params["since"] = to_us(since, "since")
        if active_at is not None:
            where.append("expires_at > :active_at")
            params["active_at"] = to_us(active_at, "active_at")
        sql = "SELECT * FROM signals" + _where(where) + " ORDER BY last_seen DESC, key"
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be >= 1, got {limit}")
            sql += " LIMIT :limit"
            params["limit"] = limit
        return [signal_from_row(r) for r in self._all(sql, params)]

    # ---------------------------------------------------------------- store.snapshots

    def history(self) -> list[DayRow]:
        """`store.snapshots.history()`: per symbol, expiry, trading day and provider."""
        # The trading day as store/timecodec.py's ist_day_number computes it in SQL.
        day = f"(provider_ts + {IST_OFFSET_US}) / {DAY_US}"
        rows = self._all(
            f"SELECT symbol, expiry, {day} AS day, provider, count(*) AS n, "
            "min(provider_ts) AS first, max(provider_ts) AS last FROM snapshots "
            f"GROUP BY symbol, expiry, {day}, provider ORDER BY symbol, expiry, {day}, provider"
        )
        return [
            DayRow(
                symbol=r.symbol,
                expiry=r.expiry,
                trading_date=date.fromordinal(_EPOCH_ORDINAL + int(r.day)),
                provider=r.provider,
                count=int(r.n),
                first_ts=from_us(r.first),
                last_ts=from_us(r.last),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ optterm status

    @property
    def url(self) -> str:
        """What the Store calls itself for this file (resolve_url's display form)."""
        return f"sqlite+aiosqlite:///{self.path}"

    def current_lease(self, name: str = "poller") -> LeaseInfo | None:
        """`store.lease.current_lease(store, name)`."""
        from optterm.store.reports import lease_from_row

        rows = self._all("SELECT * FROM leases WHERE name = :name", {"name": name})
        return lease_from_row(rows[0]) if rows else None

    def lease_is_live(self, info: LeaseInfo | None, *, now: datetime, stale_after: float) -> bool:
        """`store.lease.lease_is_live(store, info, …)` for a SQLite file: its lock file probed."""
        from optterm.store.reports import lock_held, lock_path

        if info is None or info.released_at is not None:
            return False
        held = lock_held(lock_path(self.path))
        if held is None:
            return (now - info.heartbeat_at).total_seconds() <= stale_after
        return held

    def last_snapshot(self) -> LastSnapshot | None:
        """`store.status.last_snapshot()`."""
        from optterm.store.reports import last_snapshot_from_row

        rows = self._all(
            "SELECT id, symbol, expiry, provider, feed, provider_ts, fetched_at FROM snapshots "
            "ORDER BY id DESC LIMIT 1"
        )
        return last_snapshot_from_row(rows[0]) if rows else None

    def provider_health(self) -> list[ProviderHealth]:
        """`store.health.load()`: the rows of the most recent day that has any."""
        from optterm.store.reports import health_from_row

        sql = (
            "SELECT * FROM provider_health WHERE day = (SELECT max(day) FROM provider_health) "
            "ORDER BY provider"
        )
        return [health_from_row(r) for r in self._all(sql)]

    def outbox_backlog(self) -> dict[str, int]:
        """`store.outbox.backlog()`: rows per status, every status present."""
        from optterm.model import Delivery

        out = {d.value: 0 for d in Delivery}
        for r in self._all("SELECT status, count(*) AS n FROM outbox GROUP BY status"):
            out[r.status] = int(r.n)
        return out

    def failed_deliveries(self, limit: int) -> list[FailedDelivery]:
        """`store.status.failed_deliveries(limit)`."""
        from optterm.model import Delivery
        from optterm.store.reports import failed_delivery_from_row

        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        sql = (
            "SELECT o.id, o.event_id, o.channel_label, o.attempts, o.last_error, o.updated_at, "
            "e.title FROM outbox o LEFT OUTER JOIN alert_events e ON e.id = o.event_id "
            "WHERE o.status = :failed ORDER BY o.updated_at DESC, o.id DESC LIMIT :limit"
        )
        rows = self._all(sql, {"failed": Delivery.FAILED.value, "limit": limit})
        return [failed_delivery_from_row(r) for r in rows]

    def failed_since(self, since: datetime) -> int:
        """`store.status.failed_since(since)`."""
        from optterm.model import Delivery

        sql = "SELECT count(*) AS n FROM outbox WHERE status = :failed AND updated_at >= :since"
        rows = self._all(sql, {"failed": Delivery.FAILED.value, "since": to_us(since, "since")})
        return int(rows[0].n or 0)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _where(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""
