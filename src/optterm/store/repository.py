"""The snapshot repository: `open_store` and `Store`.

One BEGIN IMMEDIATE transaction per snapshot on a single-connection writer engine, whose
connection the Store keeps checked out; reads on a separate reader engine as autocommit
statements (an open read transaction would pin the WAL and let it grow). Timestamps are integer
epoch microseconds UTC, so ordering and ranges are plain integer comparisons on every backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import math
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np
from sqlalchemy import (
    BigInteger,
    Row,
    bindparam,
    delete,
    exc,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optterm.model import (
    LEG_FIELDS,
    AlertEvent,
    AlertRule,
    ChainSnapshot,
    Feed,
    Metrics,
    PatternKind,
    ProviderHealth,
    Signal,
)
from optterm.store.codec import ColumnBlob, decode_chain, encode_chain
from optterm.store.db import (
    DatabaseTarget,
    create_engines,
    resolve_url,
    sqlite_checkpoint,
    sqlite_incremental_vacuum,
)
from optterm.store.errors import (
    CodecError,
    CorruptDatabaseError,
    StoreError,
    StoreLocationError,
)
from optterm.store.migrate import FileState, inspect_sqlite_file, upgrade_to_head
from optterm.store.schema import chains, leases, snapshots

if TYPE_CHECKING:
    from optterm.model import Channel
    from optterm.store.alerts import EventView, RuleStateRow

__all__ = ["SERIES_FIELDS", "HistoryRow", "Store", "StrikeSeries", "open_store"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
# Asia/Kolkata has been UTC+05:30 without DST since 1945, so a trading date is a fixed shift —
# which lets history_summary group by date in portable integer SQL.
_IST_OFFSET_US: Final = 19_800_000_000
_DAY_US: Final = 86_400_000_000
_PURGE_BATCH: Final = 2000
_MAX_KEY_LEN: Final = 32

SERIES_FIELDS: Final[tuple[str, ...]] = (
    "spot",
    *(f"{side}_{f}" for side in ("ce", "pe") for f in LEG_FIELDS),
)

_ROW_COLUMNS = (
    snapshots.c.id,
    snapshots.c.symbol,
    snapshots.c.expiry,
    snapshots.c.provider,
    snapshots.c.feed,
    snapshots.c.provider_ts,
    snapshots.c.fetched_at,
    snapshots.c.spot,
    snapshots.c.lot_size,
    snapshots.c.meta,
    snapshots.c.data,
)
_SNAP_KEY = (
    snapshots.c.symbol == bindparam("k_symbol"),
    snapshots.c.expiry == bindparam("k_expiry"),
    snapshots.c.provider == bindparam("k_provider"),
)
# First write of a chain in this process: is it registered, and what did we store last?
_SEED = select(
    select(chains.c.first_ts)
    .where(
        chains.c.symbol == bindparam("k_symbol"),
        chains.c.expiry == bindparam("k_expiry"),
        chains.c.provider == bindparam("k_provider"),
    )
    .scalar_subquery(),
    select(snapshots.c.provider_ts)
    .where(*_SNAP_KEY)
    .order_by(snapshots.c.provider_ts.desc())
    .limit(1)
    .scalar_subquery(),
)
_INSERT_SNAPSHOT = insert(snapshots)
_INSERT_CHAIN = insert(chains)
_EXISTS = select(snapshots.c.id).where(*_SNAP_KEY, snapshots.c.provider_ts == bindparam("k_ts"))
# Fencing (store/lease.py): the lease number the store records now. FOR SHARE (PostgreSQL; SQLite
# renders none and needs none under BEGIN IMMEDIATE) holds off a takeover until our COMMIT.
_FENCE = (
    select(leases.c.lease_no).where(leases.c.name == bindparam("fence")).with_for_update(read=True)
)
_DELETE_EMPTY_CHAINS = delete(chains).where(
    ~exists().where(
        snapshots.c.symbol == chains.c.symbol,
        snapshots.c.expiry == chains.c.expiry,
        snapshots.c.provider == chains.c.provider,
    )
)
# Newest provider_ts per expiry of a symbol: one index seek per registered chain.
_NEWEST = (
    select(snapshots.c.provider_ts)
    .where(snapshots.c.symbol == chains.c.symbol, snapshots.c.expiry == chains.c.expiry)
    .order_by(snapshots.c.provider_ts.desc())
    .limit(1)
    .scalar_subquery()
)


_HEADS = (
    select(chains.c.expiry, _NEWEST.label("newest"))
    .where(chains.c.symbol == bindparam("symbol"))
    .distinct()
)
_HEADS_EXPIRY = _HEADS.where(chains.c.expiry == bindparam("expiry"))
_ROW_AT = (
    select(*_ROW_COLUMNS)
    .where(
        snapshots.c.symbol == bindparam("symbol"),
        snapshots.c.expiry == bindparam("expiry"),
        snapshots.c.provider_ts == bindparam("ts"),
    )
    .order_by(snapshots.c.id.desc())
    .limit(1)
)

# Trading date (IST) as a day number, in integer SQL that every backend evaluates the same way.
# Typed integer literals, inline: `//` on integers renders as plain integer division (FLOOR()
# is not in every SQLite build), and PostgreSQL needs GROUP BY to repeat the SELECT expression
# verbatim, which bound parameters would not.
_DAY = (snapshots.c.provider_ts + literal_column(str(_IST_OFFSET_US), BigInteger)) // (
    literal_column(str(_DAY_US), BigInteger)
)
_HISTORY = (
    select(
        snapshots.c.symbol,
        snapshots.c.expiry,
        _DAY.label("day"),
        snapshots.c.provider,
        func.count(),
        func.min(snapshots.c.provider_ts),
        func.max(snapshots.c.provider_ts),
    )
    .group_by(snapshots.c.symbol, snapshots.c.expiry, _DAY, snapshots.c.provider)
    .order_by(snapshots.c.symbol, snapshots.c.expiry, _DAY, snapshots.c.provider)
)


def _pick_head(heads: list[Row[Any]]) -> Row[Any] | None:
    """The nearest expiry with data on the newest trading day; else the newest expiry's head."""
    if not heads:
        return None
    newest = max(h.newest for h in heads)
    day = _ist_date(newest)
    live = [h for h in heads if _ist_date(h.newest) == day and h.expiry >= day]
    if live:
        return min(live, key=lambda h: h.expiry)
    return next(h for h in heads if h.newest == newest)


def _to_us(ts: datetime, name: str = "timestamp") -> int:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {ts!r}")
    return (ts - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _ist_date(us: int) -> date:
    return date(1970, 1, 1) + timedelta(days=(us + _IST_OFFSET_US) // _DAY_US)


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    key: tuple[str, date, str]
    ts: int
    row: dict[str, Any]


def _snapshot_row(snap: ChainSnapshot, ts: int) -> dict[str, Any]:
    return {
        "symbol": snap.symbol,
        "expiry": snap.expiry,
        "provider": snap.provider,
        "feed": str(snap.feed),
        "provider_ts": ts,
        "fetched_at": _to_us(snap.fetched_at, "fetched_at"),
        "spot": None if math.isnan(snap.spot) else float(snap.spot),
        "lot_size": int(snap.lot_size),
        "n_strikes": len(snap),
        "ce_oi_total": _total(snap.ce.oi),
        "pe_oi_total": _total(snap.pe.oi),
        "ce_volume_total": _total(snap.ce.volume),
        "pe_volume_total": _total(snap.pe.volume),
        "meta": json.dumps(snap.meta, sort_keys=True, separators=(",", ":")) if snap.meta else None,
        "data": encode_chain(snap),
    }


def _total(col: np.ndarray) -> float | None:
    finite = col[~np.isnan(col)]
    return float(finite.sum()) if finite.size else None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """What the store holds for one chain on one trading day (Asia/Kolkata) from one provider."""

    symbol: str
    expiry: date
    trading_date: date
    provider: str
    count: int
    first_ts: datetime  # UTC
    last_ts: datetime  # UTC

    @property
    def date(self) -> _dt.date:
        """Alias of `trading_date` (the name `optterm history` reads)."""
        return self.trading_date


@dataclass(frozen=True, slots=True, eq=False)
class StrikeSeries:
    """One strike's values over time: `ts` (datetime64[us], UTC) and one float64 array per field.

    NaN where the strike was absent from a snapshot (or the field had no value).
    """

    symbol: str
    expiry: date
    strike: float
    ts: np.ndarray
    values: Mapping[str, np.ndarray]

    def __getitem__(self, field: str) -> np.ndarray:
        return self.values[field]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.values)


class Store:
    """Snapshot history on one database. Create with `open_store`; always `close()` it."""

    def __init__(self, target: DatabaseTarget, writer: AsyncEngine, reader: AsyncEngine) -> None:
        self.url: str = target.display
        self.path: Path | None = target.path
        self._target = target
        self._writer = writer
        self._reader = reader
        # Last provider_ts written per (symbol, expiry, provider); seeded from the database on
        # first use so a restart does not re-store the snapshot it stored just before.
        self._last: dict[tuple[str, date, str], int | None] = {}
        self._write_lock = asyncio.Lock()
        # The writer's one connection stays checked out between writes: the pool round trip
        # costs about a tenth of a write. Used only under _write_lock.
        self._held: AsyncConnection | None = None
        self._closed = False
        # Fencing, set by store/lease.py while this process holds a lease: (name, lease_no).
        # Every write transaction then re-reads that lease's number before COMMIT and raises
        # LeaseLost (rolling back) if another process has taken the lease over since.
        self.fence: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------------------ helpers

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"The store {self.url} is closed; open it again with open_store().")

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        self._check_open()
        try:
            yield
        except exc.SQLAlchemyError as err:
            raise _db_error(self.url, action, err) from err

    async def _write_conn(self) -> AsyncConnection:
        conn = self._held
        if conn is None or conn.closed or conn.invalidated:
            conn = self._held = await self._writer.connect()
        return conn

    async def _drop_write_conn(self) -> None:
        # After a failed write the connection goes back to the pool (which resets or discards
        # it) rather than being trusted again.
        conn, self._held = self._held, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        # Caller holds _write_lock. On any failure the connection is dropped, not reused.
        try:
            conn = await self._write_conn()
            async with conn.begin():
                yield conn
                if self.fence is not None:  # the body succeeded; check before COMMIT
                    name, ours = self.fence
                    if (now := await conn.scalar(_FENCE, {"fence": name})) != ours:
                        from optterm.store.lease import LeaseLost

                        raise LeaseLost.fenced(self.url, name, ours, now)
        except BaseException:
            await self._drop_write_conn()
            raise

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite) on the store's single writer
        connection, serialised with every other write of this Store.

        For the store's other repositories (metrics, signals, alerts, …): they must write
        through here, since the writer engine's only connection is held by the Store.
        """
        self._check_open()
        async with self._write_lock, self._transaction() as conn:
            yield conn

    async def save_health(self, rows: Sequence[ProviderHealth]) -> None:
        from optterm.store.health import save_health

        await save_health(self, rows)

    async def load_health(self, day: date | None = None) -> list[ProviderHealth]:
        from optterm.store.health import load_health

        return await load_health(self, day)

    async def save_metrics(self, rows: Sequence[Metrics]) -> None:
        from optterm.store.analytics import save_metrics

        await save_metrics(self, rows)

    async def latest_metrics(self, symbol: str, expiry: date | None = None) -> Metrics | None:
        from optterm.store.analytics import latest_metrics

        return await latest_metrics(self, symbol, expiry)

    async def metrics_series(
        self,
        symbol: str,
        expiry: date,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Metrics]:
        from optterm.store.analytics import metrics_series

        return await metrics_series(self, symbol, expiry, start, end)

    async def daily_atm_iv(self, symbol: str, before: datetime, days: int) -> list[float]:
        from optterm.store.analytics import daily_atm_iv

        return await daily_atm_iv(self, symbol, before, days)

    async def save_signals(self, signals: Sequence[Signal]) -> None:
        from optterm.store.analytics import save_signals

        await save_signals(self, signals)

    async def save_analytics(self, metrics: Sequence[Metrics], signals: Sequence[Signal]) -> None:
        """A tick's metrics and signals in one transaction."""
        from optterm.store.analytics import save_analytics

        await save_analytics(self, metrics, signals)

    async def load_signals(
        self,
        symbol: str | None = None,
        kinds: Iterable[PatternKind | str] | None = None,
        since: datetime | None = None,
        active_at: datetime | None = None,
        limit: int | None = 200,
    ) -> list[Signal]:
        from optterm.store.analytics import load_signals

        return await load_signals(self, symbol, kinds, since, active_at, limit)

    # The notification outbox (store/outbox.py); items are outbox.OutboxItem.
    async def outbox_due(self, now: datetime, limit: int = 100) -> list[Any]:
        from optterm.store.outbox import due

        return await due(self, now, limit)

    async def outbox_claim(self, outbox_id: int, now: datetime) -> bool:
        from optterm.store.outbox import claim

        return await claim(self, outbox_id, now)

    async def outbox_mark_sent(self, outbox_id: int, at: datetime) -> bool:
        from optterm.store.outbox import mark_sent

        return await mark_sent(self, outbox_id, at)

    async def outbox_mark_retry(self, outbox_id: int, next_at: datetime, error: str) -> bool:
        from optterm.store.outbox import mark_retry

        return await mark_retry(self, outbox_id, next_at, error)

    async def outbox_mark_failed(self, outbox_id: int, error: str) -> bool:
        from optterm.store.outbox import mark_failed

        return await mark_failed(self, outbox_id, error)

    async def outbox_recover_interrupted(self) -> int:
        from optterm.store.outbox import recover_interrupted

        return await recover_interrupted(self)

    async def outbox_backlog(self) -> dict[str, int]:
        from optterm.store.outbox import backlog

        return await backlog(self)

    async def outbox_next_due_at(self) -> datetime | None:
        from optterm.store.outbox import next_due_at

        return await next_due_at(self)

    # Scheduler job runs (store/jobs.py, items are jobs.JobRun) and end-of-day summaries
    # (store/daily.py, items are daily.DailySpot / daily.DailyStrike).
    async def start_job(self, name: str, at: datetime) -> int:
        from optterm.store.jobs import start_job

        return await start_job(self, name, at)

    async def finish_job(
        self,
        job_id: int,
        outcome: str,
        detail: str,
        at: datetime,
        *,
        duration_ms: float | None = None,
    ) -> bool:
        from optterm.store.jobs import finish_job

        return await finish_job(self, job_id, outcome, detail, at, duration_ms=duration_ms)

    async def list_jobs(self, name: str | None = None, limit: int = 50) -> list[Any]:
        from optterm.store.jobs import list_jobs

        return await list_jobs(self, name, limit)

    async def last_job_run(
        self, name: str, outcome: str | Sequence[str] | None = "ok"
    ) -> Any | None:
        from optterm.store.jobs import last_run

        return await last_run(self, name, outcome)

    async def summarize_day(self, day: date, calendar: Any) -> tuple[int, int]:
        from optterm.store.daily import summarize_day

        return await summarize_day(self, day, calendar)

    async def daily_spot(
        self, symbol: str, start: date | None = None, end: date | None = None
    ) -> list[Any]:
        from optterm.store.daily import daily_spot

        return await daily_spot(self, symbol, start, end)

    async def daily_strikes(self, symbol: str, expiry: date, day: date) -> list[Any]:
        from optterm.store.daily import daily_strikes

        return await daily_strikes(self, symbol, expiry, day)

    # Alert rules, state, events and the outbox: store/alerts.py.

    async def add_rule(self, rule: AlertRule) -> AlertRule:
        from optterm.store.alerts import add_rule

        return await add_rule(self, rule)

    async def update_rule(self, rule: AlertRule) -> AlertRule:
        from optterm.store.alerts import update_rule

        return await update_rule(self, rule)

    async def set_enabled(self, rule_id: int, enabled: bool) -> bool:
        from optterm.store.alerts import set_enabled

        return await set_enabled(self, rule_id, enabled)

    async def delete_rule(self, rule_id: int) -> bool:
        from optterm.store.alerts import delete_rule

        return await delete_rule(self, rule_id)

    async def get_rule(self, rule_id: int) -> AlertRule | None:
        from optterm.store.alerts import get_rule

        return await get_rule(self, rule_id)

    async def list_rules(
        self, *, owner: str | None = None, symbol: str | None = None, enabled: bool | None = None
    ) -> list[AlertRule]:
        from optterm.store.alerts import list_rules

        return await list_rules(self, owner=owner, symbol=symbol, enabled=enabled)

    async def rules_version(self) -> int:
        from optterm.store.alerts import rules_version

        return await rules_version(self)

    async def load_states(self) -> dict[int, RuleStateRow]:
        from optterm.store.alerts import load_states

        return await load_states(self)

    async def save_states(self, states: Sequence[RuleStateRow]) -> None:
        from optterm.store.alerts import save_states

        await save_states(self, states)

    async def record_firings(
        self,
        firings: Sequence[tuple[AlertEvent, Sequence[Channel]]],
        states: Sequence[RuleStateRow],
        *,
        one_shot_done: Sequence[int] = (),
    ) -> list[AlertEvent]:
        from optterm.store.alerts import record_firings

        return await record_firings(self, firings, states, one_shot_done=one_shot_done)

    async def list_events(
        self,
        *,
        rule_id: int | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[EventView]:
        from optterm.store.alerts import list_events

        return await list_events(self, rule_id=rule_id, symbol=symbol, since=since, limit=limit)

    @contextlib.asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A reader connection for the store's other repositories; keep what you do short, so
        the WAL is not pinned."""
        with self._errors("Reading"):
            async with self._reader.connect() as conn:
                yield conn

    def _to_snapshot(self, row: Row[Any]) -> ChainSnapshot:
        try:
            strikes, ce, pe = decode_chain(row.data)
        except CodecError as err:
            raise CodecError(
                f"Snapshot {row.id} ({row.symbol} {row.expiry} at "
                f"{_from_us(row.provider_ts).isoformat()}) in {self.url} cannot be read: {err}. "
                "Delete that snapshot or restore the database from a backup."
            ) from None
        return ChainSnapshot(
            symbol=row.symbol,
            expiry=row.expiry,
            provider=row.provider,
            feed=Feed(row.feed),
            provider_ts=_from_us(row.provider_ts),
            fetched_at=_from_us(row.fetched_at),
            spot=math.nan if row.spot is None else row.spot,
            lot_size=row.lot_size,
            strikes=strikes,
            ce=ce,
            pe=pe,
            meta=json.loads(row.meta) if row.meta else {},
        )

    # ------------------------------------------------------------------------------ writing

    async def write_snapshot(self, snap: ChainSnapshot) -> bool:
        """Store one snapshot in its own transaction; see `write_snapshots`."""
        return (await self.write_snapshots([snap]))[0]

    async def write_snapshots(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
        """Store snapshots in one transaction (the poller writes a whole tick at once: one
        COMMIT and one fence check instead of one per chain). All are stored or none.

        Element i is False, nothing written for it, when snaps[i]'s provider_ts equals the last
        one stored for the same (symbol, expiry, provider) — the provider has not published new
        data — or an earlier element of the batch has the same key and provider_ts.
        """
        stored = [False] * len(snaps)
        pending: list[_Pending] = []
        batch: set[tuple[tuple[str, date, str], int]] = set()
        for i, snap in enumerate(snaps):
            for name, value in (("symbol", snap.symbol), ("provider", snap.provider)):
                if not value or len(value) > _MAX_KEY_LEN:
                    raise ValueError(f"{name} must be 1–{_MAX_KEY_LEN} characters, got {value!r}")
            key = (snap.symbol, snap.expiry, snap.provider)
            ts = _to_us(snap.provider_ts, "provider_ts")
            if self._last.get(key, -1) == ts or (key, ts) in batch:
                continue
            batch.add((key, ts))
            # Encode before taking the write lock: CPU work must not hold the database lock.
            pending.append(_Pending(i, key, ts, _snapshot_row(snap, ts)))
        if not pending:
            return stored
        what = (
            f"Storing {snaps[pending[0].index].symbol} {pending[0].key[1]}"
            if len(pending) == 1
            else f"Storing {len(pending)} snapshots"
        )
        async with self._write_lock:
            for attempt in (1, 2):
                try:
                    with self._errors(what):
                        for i in await self._write_batch(pending, careful=attempt == 2):
                            stored[i] = True
                        return stored
                except StoreError as err:
                    if not isinstance(err.__cause__, exc.IntegrityError) or attempt == 2:
                        raise
                    # Another process wrote these keys behind our cache: re-seed and re-check.
                    for p in pending:
                        self._last.pop(p.key, None)
        raise AssertionError("unreachable")

    async def _write_batch(self, pending: list[_Pending], *, careful: bool) -> list[int]:
        """Insert what is new in `pending`; the indexes stored. The cache is updated only after
        COMMIT: a rolled-back write must not be remembered as stored."""
        last: dict[tuple[str, date, str], int | None] = {}
        new_chains: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        written: list[int] = []
        async with self._transaction() as conn:
            for p in pending:
                # A key in the cache is registered in `chains`; its value is the last provider_ts.
                if p.key in last:
                    registered = True
                elif p.key in self._last:
                    registered, last[p.key] = True, self._last[p.key]
                else:
                    params = {"k_symbol": p.key[0], "k_expiry": p.key[1], "k_provider": p.key[2]}
                    seed = (await conn.execute(_SEED, params)).one()
                    registered, last[p.key] = seed[0] is not None, seed[1]
                    if careful and registered:
                        exists = await conn.scalar(_EXISTS, {**params, "k_ts": p.ts})
                        if exists is not None:
                            continue
                if last[p.key] == p.ts:
                    continue
                if not registered:
                    new_chains.append(
                        {
                            "symbol": p.key[0],
                            "expiry": p.key[1],
                            "provider": p.key[2],
                            "first_ts": p.ts,
                        }
                    )
                prev = last[p.key]
                last[p.key] = p.ts if prev is None else max(p.ts, prev)
                rows.append(p.row)
                written.append(p.index)
            if new_chains:
                await conn.execute(_INSERT_CHAIN, new_chains)
            if rows:
                await conn.execute(_INSERT_SNAPSHOT, rows)
        self._last.update((k, v) for k, v in last.items() if v is not None)
        return written

    # ------------------------------------------------------------------------------ reading

    async def latest_chain(self, symbol: str, expiry: date | None = None) -> ChainSnapshot | None:
        """The newest snapshot of `symbol` (for `expiry`, or the nearest live expiry if None).

        With expiry None: among the expiries that have data on the trading day (IST) of the
        symbol's newest snapshot and had not expired before that day, the nearest one.
        Two index seeks: the newest provider_ts per registered expiry, then that row.
        """
        with self._errors(f"Reading the latest {symbol} chain"):
            async with self._reader.connect() as conn:
                # A purge may delete the chosen row between the two reads: look once more.
                for _ in range(2):
                    if expiry is None:
                        heads = (await conn.execute(_HEADS, {"symbol": symbol})).all()
                    else:
                        heads = (
                            await conn.execute(_HEADS_EXPIRY, {"symbol": symbol, "expiry": expiry})
                        ).all()
                    head = _pick_head([h for h in heads if h.newest is not None])
                    if head is None:
                        return None
                    row = (
                        await conn.execute(
                            _ROW_AT,
                            {"symbol": symbol, "expiry": head.expiry, "ts": head.newest},
                        )
                    ).one_or_none()
                    if row is not None:
                        return self._to_snapshot(row)
        return None

    async def _expiries(self, symbol: str) -> list[date]:
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(chains.c.expiry).where(chains.c.symbol == symbol).distinct()
            )
            return sorted(r[0] for r in rows)

    async def iter_snapshots(
        self,
        symbol: str,
        expiry: date | None,
        start: datetime,
        end: datetime,
        batch: int = 200,
    ) -> AsyncIterator[ChainSnapshot]:
        """Snapshots of `symbol` (one expiry, or all if None) with start <= provider_ts < end,
        ascending by provider_ts. Reads `batch` rows at a time, each batch in its own short
        reads, so iterating slowly never holds the database.
        """
        lo, hi = _to_us(start, "start"), _to_us(end, "end")
        if batch < 1:
            raise ValueError("batch must be >= 1")
        with self._errors(f"Reading {symbol} history"):
            expiries = [expiry] if expiry is not None else await self._expiries(symbol)
        if not expiries:
            return
        cond = [snapshots.c.symbol == symbol, snapshots.c.provider_ts < hi]
        cond.append(
            snapshots.c.expiry == expiries[0]
            if len(expiries) == 1
            else snapshots.c.expiry.in_(expiries)
        )
        last: tuple[int, int] | None = None
        while True:
            where = [*cond, snapshots.c.provider_ts >= (lo if last is None else last[0])]
            if last is not None:
                where.append(or_(snapshots.c.provider_ts > last[0], snapshots.c.id > last[1]))
            # Keys first (index only), then the rows by primary key: sorting whole rows with
            # their blobs for every batch would read the whole range each time.
            keys_stmt = (
                select(snapshots.c.provider_ts, snapshots.c.id)
                .where(*where)
                .order_by(snapshots.c.provider_ts, snapshots.c.id)
                .limit(batch)
            )
            with self._errors(f"Reading {symbol} history"):
                async with self._reader.connect() as conn:
                    keys = (await conn.execute(keys_stmt)).all()
                    if not keys:
                        return
                    ids = [k.id for k in keys]
                    rows = (
                        await conn.execute(select(*_ROW_COLUMNS).where(snapshots.c.id.in_(ids)))
                    ).all()
            # (A purge between the two reads can only make `rows` shorter.)
            rows.sort(key=lambda r: (r.provider_ts, r.id))
            for row in rows:
                yield self._to_snapshot(row)
            if len(keys) < batch:
                return
            last = (keys[-1].provider_ts, keys[-1].id)

    async def count_snapshots(
        self,
        symbol: str | None = None,
        expiry: date | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> int:
        """How many snapshots match; every filter is optional ([start, end) on provider_ts)."""
        stmt = select(func.count()).select_from(snapshots)
        if symbol is not None:
            stmt = stmt.where(snapshots.c.symbol == symbol)
        if expiry is not None:
            stmt = stmt.where(snapshots.c.expiry == expiry)
        if start is not None:
            stmt = stmt.where(snapshots.c.provider_ts >= _to_us(start, "start"))
        if end is not None:
            stmt = stmt.where(snapshots.c.provider_ts < _to_us(end, "end"))
        with self._errors("Counting snapshots"):
            async with self._reader.connect() as conn:
                return int(await conn.scalar(stmt) or 0)

    async def strike_series(
        self,
        symbol: str,
        expiry: date,
        strike: float,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = ("ce_oi", "pe_oi"),
    ) -> StrikeSeries:
        """One strike's `fields` over [start, end), decoding only those columns of each blob."""
        fields = tuple(fields)
        bad = [f for f in fields if f not in SERIES_FIELDS]
        if bad:
            raise ValueError(f"unknown field(s) {bad}; choose from {', '.join(SERIES_FIELDS)}")
        lo, hi = _to_us(start, "start"), _to_us(end, "end")
        blob_fields = [f for f in fields if f != "spot"]
        cols = [snapshots.c.id, snapshots.c.provider_ts, snapshots.c.spot]
        if blob_fields:
            cols.append(snapshots.c.data)
        stmt = (
            select(*cols)
            .where(
                snapshots.c.symbol == symbol,
                snapshots.c.expiry == expiry,
                snapshots.c.provider_ts >= lo,
                snapshots.c.provider_ts < hi,
            )
            .order_by(snapshots.c.provider_ts, snapshots.c.id)
        )
        with self._errors(f"Reading the {symbol} {expiry} {strike:g} series"):
            async with self._reader.connect() as conn:
                rows = (await conn.execute(stmt)).all()
        target = float(strike)
        tol = 1e-9 * max(1.0, abs(target))
        # Strike lists rarely change within a day: find the strike's row once per distinct list.
        row_of: dict[bytes | None, int] = {}
        ts = np.empty(len(rows), dtype=np.int64)
        out = {f: np.full(len(rows), np.nan) for f in fields}
        for i, r in enumerate(rows):
            ts[i] = r.provider_ts
            if "spot" in out and r.spot is not None:
                out["spot"][i] = r.spot
            if not blob_fields:
                continue
            try:
                cb = ColumnBlob(r.data)
                skey = cb.segment_key("strike")
                idx = row_of.get(skey)
                if idx is None:
                    strikes = cb.column("strike")
                    j = int(np.searchsorted(strikes, target - tol))
                    idx = j if j < strikes.size and abs(strikes[j] - target) <= tol else -1
                    row_of[skey] = idx
                if idx >= 0:
                    for f in blob_fields:
                        out[f][i] = cb.value(f, idx)
            except CodecError as err:
                raise CodecError(
                    f"Snapshot {r.id} ({symbol} {expiry} at {_from_us(r.provider_ts).isoformat()})"
                    f" in {self.url} cannot be read: {err}. Delete that snapshot or restore the "
                    "database from a backup."
                ) from None
        return StrikeSeries(symbol, expiry, target, ts.view("datetime64[us]"), out)

    async def history_summary(self) -> list[HistoryRow]:
        """Per (symbol, expiry, trading date in Asia/Kolkata, provider): count, first, last ts."""
        with self._errors("Summarising the history"):
            async with self._reader.connect() as conn:
                rows = (await conn.execute(_HISTORY)).all()
        return [
            HistoryRow(
                symbol=r[0],
                expiry=r[1],
                trading_date=date(1970, 1, 1) + timedelta(days=int(r[2])),
                provider=r[3],
                count=int(r[4]),
                first_ts=_from_us(r[5]),
                last_ts=_from_us(r[6]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------------------ upkeep

    async def purge(self, older_than: datetime) -> int:
        """Delete snapshots with provider_ts < older_than; returns how many were deleted.

        Deletes in small transactions so a running poller's writes interleave with the purge.
        """
        cutoff = _to_us(older_than, "older_than")
        doomed = select(snapshots.c.id).where(snapshots.c.provider_ts < cutoff).limit(_PURGE_BATCH)
        stmt = delete(snapshots).where(snapshots.c.id.in_(doomed))
        total = 0
        with self._errors("Purging old snapshots"):
            try:
                while True:
                    # One batch per lock hold: a poller waiting to write goes in between.
                    async with self._write_lock, self._transaction() as conn:
                        deleted = (await conn.execute(stmt)).rowcount
                    total += deleted
                    if deleted < _PURGE_BATCH:
                        break
                if total:
                    async with self._write_lock:
                        async with self._transaction() as conn:
                            # Unregister chains that have no snapshot left.
                            await conn.execute(_DELETE_EMPTY_CHAINS)
                        # PostgreSQL: autovacuum reclaims the deleted rows' space.
                        if self._target.is_sqlite and not self._target.in_memory:
                            await sqlite_incremental_vacuum(await self._write_conn())
            finally:
                self._last.clear()
        return total

    async def checkpoint(self) -> None:
        """Fold the WAL into the database file and truncate it (SQLite); no-op elsewhere."""
        if not self._target.is_sqlite or self._target.in_memory:
            return  # PostgreSQL: the server's checkpointer manages its WAL
        with self._errors("Checkpointing the database"):
            async with self._write_lock:
                try:
                    await sqlite_checkpoint(await self._write_conn())
                except BaseException:
                    await self._drop_write_conn()
                    raise

    async def close(self) -> None:
        """Dispose both engines (closing every connection and its driver thread). Idempotent."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            await self._drop_write_conn()
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _db_error(where: str, action: str, err: exc.SQLAlchemyError) -> StoreError:
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip() or type(orig).__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return StoreError(
            f"{action} failed: the database {where} stayed locked by another connection for "
            "more than 5 s. Another optterm process may be writing to it; stop it or wait, "
            "and try again."
        )
    if "unable to open" in low or "readonly" in low or "read-only" in low:
        return StoreLocationError(
            f"{action} failed: the database {where} cannot be opened for writing ({text}). Check "
            "the file's and its folder's permissions, or point optterm at another file."
        )
    if "not a database" in low or "malformed" in low:
        return CorruptDatabaseError(
            f"{action} failed: the database {where} is corrupted ({text}). Move it aside and "
            "start optterm again to create a fresh one, or restore it from a backup."
        )
    if "disk is full" in low or "disk i/o" in low:
        return StoreError(
            f"{action} failed: the disk holding {where} reported an error ({text}). Free some "
            "space or check the disk, then try again."
        )
    return StoreError(f"{action} failed on the database {where}: {text}.")


# ------------------------------------------------------------------------------------ opening


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above `path`; return them deepest first (for clean-up)."""
    missing: list[Path] = []
    p = path.parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    try:
        if p.exists() and not p.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(p))
        for d in reversed(missing):
            d.mkdir()
    except OSError as err:
        _remove_dirs([d for d in missing if d.exists()])
        raise StoreLocationError(
            f"Cannot create the optterm database {path}: the folder {err.filename or path.parent}"
            f" cannot be created ({err.strerror or err}). Choose another location for the "
            "database (the store URL in the config file), or fix that path."
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        _remove_dirs(missing)
        raise StoreLocationError(
            f"Cannot create the optterm database {path}: the folder {path.parent} is not "
            "writable. Choose another location for the database (the store URL in the config "
            "file), or fix the folder's permissions."
        )
    return missing


def _remove_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def _remove_new_database(path: Path, dirs: list[Path]) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            Path(f"{path}{suffix}").unlink()
    _remove_dirs(dirs)


async def open_store(url: str, *, create: bool = True) -> Store:
    """Open (and migrate) the store at `url`: a SQLAlchemy URL or a plain file path.

    SQLite: creates the file and its folders when missing (unless create=False), refuses files
    that are not optterm databases, are damaged, or come from a newer optterm — leaving them
    untouched — and never leaves a half-created database behind when opening fails.
    An existing older-schema database is migrated even with create=False.
    """
    target = resolve_url(url)
    path = target.path
    state: FileState | None = None
    new_dirs: list[Path] = []
    if path is not None:
        state, _ = await asyncio.to_thread(inspect_sqlite_file, path)
        if state is FileState.MISSING:
            if not create:
                raise StoreError(
                    f"There is no optterm database at {path}. Run optterm once without "
                    "read-only options to create it, or point optterm at an existing database."
                )
            new_dirs = await asyncio.to_thread(_make_parents, path)
    writer, reader = create_engines(target)
    try:
        async with writer.begin() as conn:
            await conn.run_sync(upgrade_to_head, target.display)
    except BaseException as err:
        await writer.dispose()
        if reader is not writer:
            await reader.dispose()
        if state is FileState.MISSING and path is not None:
            _remove_new_database(path, new_dirs)
        if isinstance(err, exc.SQLAlchemyError):
            if path is None:
                raise StoreError(
                    f"Cannot open the database {target.display}: "
                    f"{getattr(err, 'orig', None) or err}. Check that the server is running and "
                    "the URL, user and password are right."
                ) from err
            raise _db_error(str(path), "Opening the optterm database", err) from err
        raise
    return Store(target, writer, reader)
